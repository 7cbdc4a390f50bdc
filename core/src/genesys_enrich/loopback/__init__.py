"""Loopback fakes of Genesys Cloud and a REST CRM (real HTTP servers on 127.0.0.1), and the
events to send them.

``genesys-enrich demo`` and ``genesys-enrich fakes`` run on them, and the test kit
(:mod:`genesys_enrich.testing`, which exports them to plugin authors) tests with them.
"""

from .events import customer_start_event, sample, seed_event
from .fake_crm import DEMO_CUSTOMERS, FakeCrm
from .fake_genesys import HANG, FakeGenesys, ManualClock, ScaledClock, Write
from .server import LoopbackServer, Request, Response

__all__ = [
    "DEMO_CUSTOMERS",
    "HANG",
    "FakeCrm",
    "FakeGenesys",
    "LoopbackServer",
    "ManualClock",
    "Request",
    "Response",
    "ScaledClock",
    "Write",
    "customer_start_event",
    "sample",
    "seed_event",
]
