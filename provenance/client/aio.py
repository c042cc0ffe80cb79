"""The asynchronous client of the gateway (the methods of :class:`provenance.client.Client`, awaitable)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from provenance.client.api import (
    NOT_YET_LOGGED,
    AccessCodeArg,
    AnchorTimeout,
    Api,
    GatewayError,
    IssuedPrescription,
    Receipt,
    Request,
)
from provenance.client.base import ClientBase
from provenance.log.bundle import EvidenceBundle
from provenance.records import SignedRecord


class AsyncClient(ClientBase):
    """Asynchronous client of the gateway (same methods as :class:`Client`, awaitable)."""

    def __init__(
        self, *, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )

    @classmethod
    def devnet(cls, org: str, *, root: str | Path = ".devnet", gateway: str | None = None) -> AsyncClient:
        return cls(**cls._devnet_parts(org, root, gateway))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _do(self, req: Request) -> Any:
        resp = await self._http.request(
            req.method, req.path, json=req.json, params=req.params, headers=req.headers
        )
        return Api.parse(resp)

    async def submit(self, signed: SignedRecord, payload: Any) -> Receipt:
        return Api.receipt(await self._do(Api.submit(signed, payload)))

    async def submit_many(self, items: Sequence[tuple[SignedRecord, Any]]) -> list[Receipt]:
        return Api.bulk(await self._do(Api.submit_many(items)))

    async def submit_batch(
        self,
        readings: Sequence[Mapping[str, Any]],
        *,
        mn: str,
        period_start: datetime,
        period_end: datetime,
        timestamp: str | None = None,
    ) -> Receipt:
        """Sign once and submit an ``env.batch`` of ``readings`` (JSON normal forms) of monitoring point
        ``mn`` in [period_start, period_end) (aware, whole seconds); each reading then has its own bundle
        (``GET /api/v1/env/batches/{id}/readings/{index}/bundle``)."""
        signed, payload = self._batch(
            readings, mn=mn, period_start=period_start, period_end=period_end, timestamp=timestamp
        )
        return await self.submit(signed, payload)

    async def issue_prescription(
        self,
        medication_request: Mapping[str, Any],
        *,
        rx_id: str,
        prev: str | None = None,
        timestamp: str | None = None,
    ) -> IssuedPrescription:
        signed, payload, code = self._prescription(medication_request, rx_id, prev, timestamp)
        return IssuedPrescription(await self.submit(signed, payload), rx_id, code, signed, payload)

    async def record(self, record_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.record(record_id, access_code))
        return result

    async def bundle_document(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.bundle(record_id, payload, access_code))
        return result

    async def bundle(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> EvidenceBundle:
        doc = await self.bundle_document(record_id, payload=payload, access_code=access_code)
        return EvidenceBundle.from_dict(doc)

    async def history(
        self, subject: str, *, page_size: int = 100, access_code: AccessCodeArg = None
    ) -> AsyncIterator[dict[str, Any]]:
        cursor: int | None = None
        while True:
            req = Api.history(subject, cursor, page_size, access_code)
            items, cursor = Api.page(await self._do(req))
            for item in items:
                yield item
            if not cursor:
                return

    async def rx_check(self, rx_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(Api.rx_check(rx_id, access_code))
        return result

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The log's RFC 9162 consistency proof from tree size ``first`` to ``second`` (not yet checked)."""
        return Api.proof(await self._do(Api.consistency(first, second)))

    async def checkpoint(self, size: int) -> dict[str, Any]:
        """The signed checkpoint of tree size ``size`` (``note``, ``anchor``) as the gateway serves it."""
        result: dict[str, Any] = await self._do(Api.checkpoint(size))
        return result

    async def wait_anchored(
        self, record_id: str, *, timeout: float = 30.0, interval: float = 0.2
    ) -> EvidenceBundle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                b: EvidenceBundle | None = await self.bundle(record_id)
            except GatewayError as exc:
                if exc.code != NOT_YET_LOGGED:
                    raise
                b = None
            if b is not None and b.anchor is not None:
                return b
            if time.monotonic() > deadline:
                raise AnchorTimeout(f"record {record_id} not anchored within {timeout} s")
            await asyncio.sleep(interval)

    async def verify(self, record_id: str) -> EvidenceBundle:
        b = await self.bundle(record_id)
        # Verification is CPU-bound and quick (one SM2 verify + log n hashes): no thread hop needed.
        self.verifier.verify(b)
        return b
