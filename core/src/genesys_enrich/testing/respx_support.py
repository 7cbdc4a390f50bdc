"""Let respx mock the requests the core's HTTP client sends, as it does for httpx's own transport.

respx's default mocker intercepts httpcore's connection pools. The core's client sends through
:class:`genesys_enrich.http_transport.ConnectionPool`, which takes and returns httpcore-shaped
requests and responses, so naming it as one more target is all respx needs: ``respx_mock`` routes,
``pass_through()`` and side effects then apply to ``Enricher.start``'s client unchanged. Done once
when :mod:`genesys_enrich.testing` is imported (pytest loads it through the ``pytest11`` entry
point), and nothing at all when respx is not installed.
"""

from __future__ import annotations

POOL = "genesys_enrich.http_transport.ConnectionPool"


def register_with_respx() -> bool:
    """Add the core's connection pool to respx's default mocker; ``False`` without respx."""
    try:
        from respx.mocks import HTTPCoreMocker
    except ImportError:
        return False
    HTTPCoreMocker.add_targets(POOL)
    return True
