"""The witness's HTTP API: ``POST /add-checkpoint`` (C2SP tlog-witness) and ``GET /healthz``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from provenance.errors import BodyTimeout, BodyTooLarge, ProvenanceError
from provenance.http_limits import read_body
from provenance.log.tlog_witness import MAX_REQUEST_BYTES, SIZE_MEDIA_TYPE, encode_size
from witness.config import WitnessSettings
from witness.errors import SizeConflict
from witness.service import Witness

log = logging.getLogger("witness")


async def _body(request: Request, timeout: float) -> bytes:
    """The request body, refused past the largest valid request (413) instead of read whole, and when not
    whole within ``timeout`` seconds (408)."""
    body = await read_body(request.scope, request.receive, max_bytes=MAX_REQUEST_BYTES, timeout=timeout)
    if body is None:
        raise ClientDisconnect()  # as Starlette's own body reading does
    return body


def create_app(settings: WitnessSettings | None = None, *, witness: Witness | None = None) -> FastAPI:
    """A witness app over ``witness`` (or the one ``settings`` describe, opened here)."""
    settings = settings or WitnessSettings()
    w = witness or Witness.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            w.state.close()

    app = FastAPI(
        title="Shancheng Provenance witness",
        version="1",
        description="C2SP tlog-witness add-checkpoint with SM2 cosignatures (docs/formats.md).",
        lifespan=lifespan,
    )

    @app.post("/add-checkpoint", response_class=Response)
    async def add_checkpoint(request: Request) -> Response:
        """Cosign a checkpoint that extends the last one cosigned for its log (body: docs/formats.md)."""
        body = await _body(request, settings.body_timeout)
        # SM2 verification and the state's fsync'd commit: off the event loop.
        done = await run_in_threadpool(w.add_checkpoint, body)
        cp = done.checkpoint
        log.info("cosigned %s size %d", cp.origin, cp.size)
        return Response(done.line, media_type="text/plain; charset=utf-8")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """The witness's name, verifier key and the last size it cosigned for each log."""
        held = {c.origin: c.size for c in w.state.all()}
        return {
            "name": w.key.name,
            "org": w.key.org,
            "vkey": w.key.vkey(),
            "public_key": w.key.public_key.to_pem().decode("ascii"),
            "logs": [{"origin": o, "size": held.get(o, 0)} for o in w.origins],
        }

    async def on_conflict(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SizeConflict)
        log.info("409: %s", exc.message)
        # Set as a header: Starlette would add "; charset=utf-8" to a text/* media type.
        return Response(encode_size(exc.size), status_code=409, headers={"Content-Type": SIZE_MEDIA_TYPE})

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProvenanceError)
        if exc.http_status in (403, 422):
            log.warning("%d %s: %s", exc.http_status, exc.code, exc.message)
        # A body refused unread: close, or the client's rest of it would hold the connection.
        closing = {"Connection": "close"} if isinstance(exc, BodyTooLarge | BodyTimeout) else None
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=closing)

    app.add_exception_handler(SizeConflict, on_conflict)
    app.add_exception_handler(ProvenanceError, on_error)
    return app
