"""The client's operations, each written once for both :class:`~provenance.client.Client` and
:class:`~provenance.client.AsyncClient`.

An operation is a generator that does no I/O: it yields what it needs done (a :class:`Request` to send, a
:class:`Sleep`, or an :class:`Emit` of one item to hand to the caller) and gets back the gateway's parsed
answer, or has the error raised at its ``yield``. Each client drives it with its own transport (blocking or
awaited), so the two cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

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
from provenance.listing import HistoryPages
from provenance.log.bundle import EvidenceBundle
from provenance.records import SignedRecord

if TYPE_CHECKING:
    from provenance.client.clients import ClientBase

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Emit(Generic[T]):
    item: T


Op = Generator[Request | Sleep, Any, R]
Stream = Generator[Request | Emit[T], Any, None]


class Run(Generic[R]):
    """One operation being driven: iterate it for its steps, answer each :class:`Request` with
    :meth:`reply` or :meth:`fail`; once the iteration ends, ``result`` holds what the operation returned."""

    def __init__(self, op: Generator[Any, Any, R]) -> None:
        self._op = op
        self._answer: Any = None
        self._error: Exception | None = None
        self.result: R

    def __iter__(self) -> Run[R]:
        return self

    def __next__(self) -> Any:
        answer, error = self._answer, self._error
        self._answer, self._error = None, None
        try:
            return self._op.throw(error) if error is not None else self._op.send(answer)
        except StopIteration as done:
            self.result = done.value
            raise StopIteration from None

    def reply(self, answer: Any) -> None:
        self._answer = answer

    def fail(self, error: Exception) -> None:
        """Raise ``error`` inside the operation, where it sent the request (it may handle it there)."""
        self._error = error


def submit(
    c: ClientBase, /, signed: SignedRecord, payload: Any, *, access_code: AccessCodeArg = None
) -> Op[Receipt]:
    """Submit one signed record with its payload; the gateway answers 202 with the record id.
    ``access_code``: the prescription slip's, which an ``rx.dispense`` presents (never signed)."""
    return Api.receipt((yield Api.submit(signed, payload, access_code)))


def submit_many(
    c: ClientBase,
    /,
    items: Sequence[tuple[SignedRecord, Any]],
    *,
    access_codes: Sequence[AccessCodeArg] | None = None,
) -> Op[list[Receipt]]:
    """Submit many records in one request (all or each, as the gateway reports per item);
    ``access_codes``: one per item (None where an item needs none)."""
    return Api.bulk((yield Api.submit_many(items, access_codes)))


def submit_batch(
    c: ClientBase,
    /,
    readings: Sequence[Mapping[str, Any]],
    *,
    mn: str | None = None,
    logger: str | None = None,
    period_start: datetime,
    period_end: datetime,
    timestamp: str | None = None,
) -> Op[Receipt]:
    """Sign once and submit an ``env.batch`` of ``readings`` (JSON normal forms) of monitoring point
    ``mn``, or a ``gas.batch`` of data logger ``logger``, in [period_start, period_end) (aware, whole
    seconds); each reading then has its own bundle
    (``GET /api/v1/{env|gas}/batches/{id}/readings/{index}/bundle``)."""
    signed, payload = c._batch(
        readings,
        mn=mn,
        logger=logger,
        period_start=period_start,
        period_end=period_end,
        timestamp=timestamp,
    )
    return (yield from submit(c, signed, payload))


def issue_prescription(
    c: ClientBase,
    /,
    medication_request: Mapping[str, Any],
    *,
    rx_id: str,
    prev: str | None = None,
    timestamp: str | None = None,
) -> Op[IssuedPrescription]:
    """Sign and submit an ``rx.issue`` carrying a fresh access code's digest; the code comes back to be
    printed on the patient's slip (the gateway never sees it)."""
    signed, payload, code = c._prescription(medication_request, rx_id, prev, timestamp)
    receipt = yield from submit(c, signed, payload)
    return IssuedPrescription(receipt, rx_id, code, signed, payload)


def record(c: ClientBase, /, record_id: str, *, access_code: AccessCodeArg = None) -> Op[dict[str, Any]]:
    """A record's envelope and status (``access_code``: the slip's, for a prescription's records)."""
    result: dict[str, Any] = yield Api.record(record_id, access_code)
    return result


def bundle_document(
    c: ClientBase, /, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
) -> Op[dict[str, Any]]:
    """The record's evidence bundle as the gateway serves it (JSON, not parsed)."""
    result: dict[str, Any] = yield Api.bundle(record_id, payload, access_code)
    return result


def bundle(
    c: ClientBase, /, record_id: str, *, payload: bool = True, access_code: AccessCodeArg = None
) -> Op[EvidenceBundle]:
    """The record's evidence bundle, parsed (not verified: :meth:`Client.verify` does that)."""
    doc = yield from bundle_document(c, record_id, payload=payload, access_code=access_code)
    return EvidenceBundle.from_dict(doc)


def history(
    c: ClientBase,
    /,
    subject: str,
    *,
    page_size: int = 100,
    access_code: AccessCodeArg = None,
    pages: HistoryPages | None = None,
) -> Stream[dict[str, Any]]:
    """Every record of ``subject`` this reader may see, oldest first, across pages read by ``pages``
    (a cursor that does not advance raises ListingInvalid; after its page bound, ``pages.truncated``)."""
    pages = pages if pages is not None else HistoryPages()
    cursor: int | None = None
    while True:
        items, cursor = pages.accept((yield Api.history(subject, cursor, page_size, access_code)))
        for item in items:
            yield Emit(item)
        if cursor is None:
            return


def rx_check(c: ClientBase, /, rx_id: str, *, access_code: AccessCodeArg = None) -> Op[dict[str, Any]]:
    """Whether a prescription can be dispensed now; a pharmacy passes the code on the patient's slip."""
    result: dict[str, Any] = yield Api.rx_check(rx_id, access_code)
    return result


def trace_code(c: ClientBase, /, code: str) -> Op[dict[str, Any]]:
    """Where and when the box with drug traceability code ``code`` (any accepted form) was dispensed:
    ``{code, form, digest, dispensed, dispense}``; TRACE_CODE_REUSED (409) to a reader who may not read
    that dispense (another pharmacy), TRACE_CODE_INVALID for a code of no accepted form."""
    result: dict[str, Any] = yield Api.trace_code(code)
    return result


def lineage(c: ClientBase, /, dataset: str, *, prov: bool = False) -> Op[dict[str, Any]]:
    """A dataset's ancestors and descendants as this reader sees them (``prov``: as W3C PROV-JSON)."""
    result: dict[str, Any] = yield Api.lineage(dataset, prov)
    return result


def consistency_proof(c: ClientBase, /, first: int, second: int) -> Op[list[bytes]]:
    """The log's RFC 9162 consistency proof from tree size ``first`` to ``second`` (not yet checked)."""
    return Api.proof((yield Api.consistency(first, second)))


def checkpoint(c: ClientBase, /, size: int) -> Op[dict[str, Any]]:
    """The signed checkpoint of tree size ``size`` (``note``, ``anchor``) as the gateway serves it."""
    result: dict[str, Any] = yield Api.checkpoint(size)
    return result


def wait_anchored(
    c: ClientBase, /, record_id: str, *, timeout: float = 30.0, interval: float = 0.2
) -> Op[EvidenceBundle]:
    """Poll until the record's bundle carries an anchor."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            b: EvidenceBundle | None = yield from bundle(c, record_id)
        except GatewayError as exc:
            if exc.code != NOT_YET_LOGGED:  # accepted, but no signed checkpoint covers it yet
                raise
            b = None
        if b is not None and b.anchor is not None:
            return b
        if time.monotonic() > deadline:
            raise AnchorTimeout(f"record {record_id} not anchored within {timeout} s")
        yield Sleep(interval)


def verify(c: ClientBase, /, record_id: str) -> Op[EvidenceBundle]:
    """Fetch the record's bundle and verify it (every step, the anchor too); return the bundle only when
    it is *verified* (the client's trust pins the keys), else raise (``KEYS_NOT_PINNED`` without them)."""
    b = yield from bundle(c, record_id)
    # Verification is CPU-bound and quick (one SM2 verify + log n hashes): no thread hop, even when async.
    c.verifier.verify(b)
    return b
