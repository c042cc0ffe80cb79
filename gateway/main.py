"""The FastAPI app factory: ``create_app(settings)``; the lifespan starts and stops the workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import errors
from gateway.api.front import REQUEST_THREADS, Front
from gateway.api.metrics import GatewayMetrics
from gateway.api.routes import (
    bundles,
    certificates,
    dashboard,
    domains,
    health,
    log,
    orgs,
    records,
    subjects,
    tiles,
)
from gateway.core.config import GatewaySettings
from gateway.services.runtime import Gateway

API_PREFIX = "/api/v1"
VERIFY_PAGE = Path(__file__).resolve().parent / "static" / "verify"
DASHBOARD_PAGE = VERIFY_PAGE.with_name("dashboard")


def create_app(settings: GatewaySettings | None = None, *, gateway: Gateway | None = None) -> FastAPI:
    """A gateway app; the database, chain connection and workers come up with its lifespan (or were
    opened by the caller: ``gateway``, built from the same settings, whose workers the lifespan starts)."""
    settings = settings or GatewaySettings()
    metrics = GatewayMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gw = gateway or Gateway(settings)
        app.state.gateway = gw
        app.state.request_pool = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="gw-request")
        metrics.watch(gw)
        if settings.start_workers or settings.api_only:
            gw.start()  # API-only: the registry watcher and the gauges alone
        try:
            yield
        finally:
            app.state.request_pool.shutdown()
            gw.stop()

    app = FastAPI(
        title="Shancheng Provenance gateway",
        version="1",
        description="Signed records in, evidence bundles out: SM2 signatures, SM3 log, on-chain anchors.",
        lifespan=lifespan,
    )
    # Every route documents the error body it may answer with (clients generated from /openapi.json).
    api = APIRouter(prefix=API_PREFIX, responses=errors.error_responses())
    for module in (records, bundles, certificates, subjects, log, orgs, dashboard):
        api.include_router(module.router)
    api.include_router(domains.router())  # each registered domain's own reads
    app.include_router(api)
    app.include_router(health.router, responses=errors.error_responses(500))
    app.include_router(tiles.router, responses=errors.error_responses())
    if VERIFY_PAGE.is_dir():
        # The regulators' page: static files only; it verifies bundles in the browser, not here.
        app.mount("/verify", StaticFiles(directory=VERIFY_PAGE, html=True), name="verify")
    if DASHBOARD_PAGE.is_dir():
        # The supervision dashboard: static too; its data from /api/v1/dashboard/* with the reader's token.
        app.mount("/dashboard", StaticFiles(directory=DASHBOARD_PAGE, html=True), name="dashboard")
    errors.install(app, retry_after=settings.retry_after)
    app.state.metrics = metrics
    app.add_middleware(
        Front,
        metrics=metrics,
        max_bytes=settings.max_body_bytes,
        max_depth=settings.max_json_depth,
        timeout=settings.body_timeout,
        public_url=settings.public_url,
        retry_after=settings.retry_after,
        lean=[*records.lean_routes(), *subjects.lean_routes()],  # the hot requests' fast paths
    )
    return app
