"""The HTTP server the gateway runs under: uvicorn, with limits on what a client may hold open.

The head limits (size 431, deadline 408) are ``provenance.http_limits``, which the node and the witnesses
run under too; an idle keep-alive connection closes after ``keep_alive_timeout``; the body's own deadline
is the body guard's (``gateway.api.guard``). One ``server_config`` builds the server for
``python -m gateway serve``, ``provenance devnet up`` (which runs it) and the tests.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from gateway.core.config import GatewaySettings
from provenance.http_limits import limited_config


def server_config(app: Any, settings: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of a gateway app: its address and every HTTP limit from ``settings``."""
    values: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "keep_alive_timeout": settings.keep_alive_timeout,
        "log_level": "info",
        "access_log": settings.access_log,
        **overrides,
    }
    return limited_config(
        app, max_header_bytes=settings.max_header_bytes, header_timeout=settings.header_timeout, **values
    )
