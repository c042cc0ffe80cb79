"""Finding 9 of issue #23: HTTP limits. A 32 MiB request header was read into memory, and hundreds of
connections holding partial heads or slow bodies stayed open 40 s and more. Now a request head must fit in
``max_header_bytes`` (431) and arrive within ``header_timeout`` (408), a body within ``body_timeout`` (408
``BODY_TIMEOUT``); each refusal closes the connection, and the gateway goes on answering everyone else.
Through raw sockets against the gateway as ``python -m gateway serve`` configures it (``server_config``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from gateway.api.server import server_config
from gateway.core.config import GatewaySettings
from gateway.core.db import Database
from gateway.core.security import mint_token
from tests.kit.gateway import Harness, workerless_gateway
from tests.kit.http_limits import Limits, check_http_limits, service

LIMITS = {"header_timeout": 1.0, "body_timeout": 1.5, "keep_alive_timeout": 1, "max_header_bytes": 8192}


def _check_limits(port: int, token: str) -> None:
    health = f"http://127.0.0.1:{port}/healthz"

    def honest() -> None:
        assert httpx.get(health, timeout=10).status_code == 200

    body_head = (
        f"POST /api/v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    check_http_limits(
        port,
        Limits(**LIMITS),
        honest=honest,
        request=b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        answer=b"HTTP/1.1 200 ",
        body_head=body_head.encode(),
    )


def test_http_header_and_slow_client_limits(harness: Harness, tmp_path: Path) -> None:
    with workerless_gateway(harness, tmp_path, "station-1", **LIMITS) as (_, http):
        port = http.base_url.port
        assert port is not None
        token = http.headers["Authorization"].removeprefix("Bearer ")
        _check_limits(port, token)


def test_server_config_bounds_every_connection_by_default() -> None:
    """Zero configuration is bounded too: the defaults set a head size, a head and a body deadline, and
    the server configuration uses them (``python -m gateway serve`` and ``provenance devnet up``)."""
    settings = GatewaySettings()
    config = server_config(object(), settings)
    assert config.http.max_header_bytes == settings.max_header_bytes <= 1024 * 1024  # type: ignore[union-attr]
    assert config.http.header_timeout == settings.header_timeout <= 60  # type: ignore[union-attr]
    assert 0 < settings.body_timeout <= 300
    assert config.timeout_keep_alive == settings.keep_alive_timeout


@contextlib.contextmanager
def _serve_process(harness: Harness, tmp: Path, port: int) -> Iterator[str]:
    """``python -m gateway serve`` with the limits from PROV_GW_* (as ``provenance devnet up`` runs it)."""
    db_url = f"sqlite:///{tmp / 'gateway.db'}"
    db = Database(db_url)
    try:
        db.create_all()
        token = mint_token(db, "station-1", label="test")
    finally:
        db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROV_GW_")}
    env |= {
        "PROV_GW_DATABASE_URL": db_url,
        "PROV_GW_KEK_FILE": str(tmp / "gateway.kek"),
        "PROV_GW_MANIFEST_PATH": str(harness.settings.manifest_path),
        "PROV_GW_RPC_URL": harness.network.rpc_url,
        "PROV_GW_START_WORKERS": "false",
        **{f"PROV_GW_{k.upper()}": str(v) for k, v in LIMITS.items()},
    }
    cmd = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with service(cmd, env, f"http://127.0.0.1:{port}/healthz", tmp / "serve.log"):
        yield token


def test_gateway_serve_process_applies_the_http_limits(harness: Harness, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _serve_process(harness, tmp_path, port) as token:
        _check_limits(port, token)
