"""The synchronous client of the gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from provenance.client.api import (
    AccessCodeArg,
    AnchorTimeout,
    Api,
    IssuedPrescription,
    Receipt,
    Request,
    pending_or,
)
from provenance.client.base import ClientBase
from provenance.log.bundle import EvidenceBundle
from provenance.records import SignedRecord


class Client(ClientBase):
    """Synchronous client of the gateway."""

    def __init__(
        self, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=timeout, transport=transport
        )

    @classmethod
    def devnet(cls, org: str, *, root: str | Path = ".devnet", gateway: str | None = None) -> Client:
        """A client for one demo organisation of a running devnet (reads its manifest, token and key)."""
        return cls(**cls._devnet_parts(org, root, gateway))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(self, req: Request) -> Any:
        resp = self._http.request(req.method, req.path, json=req.json, params=req.params, headers=req.headers)
        return Api.parse(resp)

    def submit(self, signed: SignedRecord, payload: Any) -> Receipt:
        """Submit one signed record with its payload; the gateway answers 202 with the record id."""
        return Api.receipt(self._do(Api.submit(signed, payload)))

    def submit_many(self, items: Sequence[tuple[SignedRecord, Any]]) -> list[Receipt]:
        """Submit many records in one request (all or each, as the gateway reports per item)."""
        return Api.bulk(self._do(Api.submit_many(items)))

    def submit_batch(
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
        return self.submit(signed, payload)

    def issue_prescription(
        self,
        medication_request: Mapping[str, Any],
        *,
        rx_id: str,
        prev: str | None = None,
        timestamp: str | None = None,
    ) -> IssuedPrescription:
        """Sign and submit an ``rx.issue`` carrying a fresh access code's digest; the code comes back to be
        printed on the patient's slip (the gateway never sees it)."""
        signed, payload, code = self._prescription(medication_request, rx_id, prev, timestamp)
        return IssuedPrescription(self.submit(signed, payload), rx_id, code, signed, payload)

    def record(self, record_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        """A record's envelope and status (``access_code``: the slip's, for a prescription's records)."""
        result: dict[str, Any] = self._do(Api.record(record_id, access_code))
        return result

    def bundle_document(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> dict[str, Any]:
        """The record's evidence bundle as the gateway serves it (JSON, not parsed)."""
        result: dict[str, Any] = self._do(Api.bundle(record_id, payload, access_code))
        return result

    def bundle(
        self, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
    ) -> EvidenceBundle:
        doc = self.bundle_document(record_id, payload=payload, access_code=access_code)
        return EvidenceBundle.from_dict(doc)

    def history(
        self, subject: str, *, page_size: int = 100, access_code: AccessCodeArg = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of ``subject`` this reader may see, oldest first, across pages."""
        cursor: int | None = None
        while True:
            items, cursor = Api.page(self._do(Api.history(subject, cursor, page_size, access_code)))
            yield from items
            if not cursor:
                return

    def rx_check(self, rx_id: str, *, access_code: AccessCodeArg = None) -> dict[str, Any]:
        """Whether a prescription can be dispensed now; a pharmacy passes the code on the patient's slip."""
        result: dict[str, Any] = self._do(Api.rx_check(rx_id, access_code))
        return result

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The log's RFC 9162 consistency proof from tree size ``first`` to ``second`` (not yet checked)."""
        return Api.proof(self._do(Api.consistency(first, second)))

    def checkpoint(self, size: int) -> dict[str, Any]:
        """The signed checkpoint of tree size ``size`` (``note``, ``anchor``) as the gateway serves it."""
        result: dict[str, Any] = self._do(Api.checkpoint(size))
        return result

    def wait_anchored(
        self, record_id: str, *, timeout: float = 30.0, interval: float = 0.2
    ) -> EvidenceBundle:
        """Poll until the record's bundle carries an anchor."""
        deadline = time.monotonic() + timeout
        while True:
            b = pending_or(lambda: self.bundle(record_id))
            if b is not None and b.anchor is not None:
                return b
            if time.monotonic() > deadline:
                raise AnchorTimeout(f"record {record_id} not anchored within {timeout} s")
            time.sleep(interval)

    def verify(self, record_id: str) -> EvidenceBundle:
        """Fetch the record's bundle and verify it (every step, the anchor too); returns the bundle."""
        b = self.bundle(record_id)
        self.verifier.verify(b)
        return b
