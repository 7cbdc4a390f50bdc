"""Test kit: loopback fakes of Genesys Cloud and a REST CRM, and event builders.

The same fakes run ``genesys-enrich demo`` and the project's end-to-end tests; plugin authors can
use them in their own suites.
"""

from ._server import LoopbackServer, Request, Response
from .events import customer_start_event, sample, seed_event
from .fake_crm import DEMO_CUSTOMERS, FakeCrm
from .fake_genesys import HANG, FakeGenesys, ScaledClock, Write
from .settings import settings_for

__all__ = [
    "DEMO_CUSTOMERS",
    "HANG",
    "FakeCrm",
    "FakeGenesys",
    "LoopbackServer",
    "Request",
    "Response",
    "ScaledClock",
    "Write",
    "customer_start_event",
    "sample",
    "seed_event",
    "settings_for",
]
