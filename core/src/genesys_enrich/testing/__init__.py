"""Test kit: loopback fakes of Genesys Cloud, a REST CRM and the AWS secrets extension, event
builders, a pipeline runner, outcome assertions and a conformance suite for CRM sources.

The fakes of Genesys Cloud and the CRM are those of :mod:`genesys_enrich.loopback`, which
``genesys-enrich demo`` and the project's end-to-end tests run on too. Installing genesys-enrich
also installs the pytest fixtures of :mod:`genesys_enrich.testing.pytest_plugin`
(``run_pipeline``, ``source``, ``clock``, ``make_event``, ``fake_genesys``...), and
:func:`~genesys_enrich.testing.conformance.crm_source_test_class` checks a CRM source in one line.
"""

from genesys_enrich.loopback import (
    DEMO_CUSTOMERS,
    HANG,
    FakeCrm,
    FakeGenesys,
    LoopbackServer,
    ManualClock,
    Request,
    Response,
    ScaledClock,
    Write,
    customer_start_event,
    sample,
    seed_event,
)

from .events import make_event, make_interaction, sqs_record
from .fake_secrets import FakeSecretsExtension
from .kit import (
    as_plugin,
    assert_enriched,
    assert_failed,
    assert_no_match,
    assert_skipped,
    run_pipeline,
    source_result,
)
from .respx_support import register_with_respx
from .settings import settings_for
from .under_test import SourceUnderTest

register_with_respx()

__all__ = [
    "DEMO_CUSTOMERS",
    "HANG",
    "FakeCrm",
    "FakeGenesys",
    "FakeSecretsExtension",
    "LoopbackServer",
    "ManualClock",
    "Request",
    "Response",
    "ScaledClock",
    "SourceUnderTest",
    "Write",
    "as_plugin",
    "assert_enriched",
    "assert_failed",
    "assert_no_match",
    "assert_skipped",
    "customer_start_event",
    "make_event",
    "make_interaction",
    "run_pipeline",
    "sample",
    "seed_event",
    "settings_for",
    "source_result",
    "sqs_record",
]
