"""The gateway's clients: what sync :class:`Client` and async :class:`AsyncClient` share (the organisation's
signer, the verifier, the devnet factory), then each over its httpx client, driving the operations of
:mod:`provenance.client.ops` (each written once) with blocking or awaited I/O."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from provenance.abc import Signer
from provenance.access_code import AccessCode
from provenance.client import ops
from provenance.client.api import Api, GatewayProofs, Request
from provenance.client.ops import Run, Sleep
from provenance.client.transport import AsyncBoundedTransport, BoundedTransport
from provenance.errors import AccessCodeDigestMissing, NotFound, ProvenanceError
from provenance.files import read_text
from provenance.log.merkle import items_root
from provenance.manifest import Manifest
from provenance.records import Envelope, SignedRecord, canonical_bytes, sign_envelope
from provenance.verification.trust import TrustStore
from provenance.verification.verify import AnchorChecker, Verifier

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
M = TypeVar("M", bound=Callable[..., Any])
A = TypeVar("A")
B = TypeVar("B")
_Adapter = Callable[[type, Callable[..., Any]], Callable[..., Any]]


def _method_of(cls: type, op: Callable[..., Any], method: M, iterator: str | None = None) -> M:
    """``method``, named and documented as ``op`` and with its signature as a method of ``cls`` shows it
    (``self`` first; returning what the operation returns, or an iterator over what it emits)."""
    functools.update_wrapper(method, op)
    del method.__wrapped__  # type: ignore[attr-defined]
    method.__module__, method.__qualname__ = __name__, f"{cls.__qualname__}.{op.__name__}"
    sig = inspect.signature(op)
    first, *rest = sig.parameters.values()
    result = str(sig.return_annotation).partition("[")[2].removesuffix("]")
    vars(method)["__signature__"] = sig.replace(
        parameters=[first.replace(name="self", annotation=inspect.Parameter.empty), *rest],
        return_annotation=f"{iterator}[{result}]" if iterator else result,
    )
    return method


def _blocking(cls: type, op: Callable[..., ops.Op[Any]]) -> Callable[..., Any]:
    """``op`` as a method of :class:`Client` (or a subclass ``cls``): runs it, returns its result."""

    def method(self: Client, /, *args: Any, **kwargs: Any) -> Any:
        return self._run(Run(op(self, *args, **kwargs)))

    return _method_of(cls, op, method)


def _awaited(cls: type, op: Callable[..., ops.Op[Any]]) -> Callable[..., Any]:
    """``op`` as a coroutine method of :class:`AsyncClient` (or a subclass ``cls``)."""

    async def method(self: AsyncClient, /, *args: Any, **kwargs: Any) -> Any:
        return await self._run(Run(op(self, *args, **kwargs)))

    return _method_of(cls, op, method)


def _iterated(cls: type, op: Callable[..., ops.Stream[Any]]) -> Callable[..., Any]:
    """``op`` as a method that returns an iterator over the items it emits: lazy, as it pages (an async
    iterator on an :class:`AsyncClient`)."""

    def method(self: Client | AsyncClient, /, *args: Any, **kwargs: Any) -> Any:
        return self._drive(Run(op(self, *args, **kwargs)))

    return _method_of(cls, op, method, "AsyncIterator" if issubclass(cls, AsyncClient) else "Iterator")


class _Method(Generic[P, B, A]):
    """An operation of :mod:`provenance.client.ops` as a method of both clients: one that returns a ``B`` on a
    :class:`Client`, an ``A`` on an :class:`AsyncClient`, built for each client class the first time it is
    looked up there."""

    def __init__(self, op: Callable[..., Any], blocking: _Adapter, awaited: _Adapter) -> None:
        self._op, self._blocking, self._awaited = op, blocking, awaited
        self._methods: dict[type, Callable[..., Any]] = {}

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Callable[..., Any]: ...
    @overload
    def __get__(self, obj: AsyncClient, owner: type | None = None) -> Callable[P, A]: ...
    @overload
    def __get__(self, obj: Client, owner: type | None = None) -> Callable[P, B]: ...
    def __get__(self, obj: ClientBase | None, owner: type | None = None) -> Callable[..., Any]:
        cls = owner if owner is not None else type(obj)
        method = self._methods.get(cls)
        if method is None:
            adapt = self._awaited if issubclass(cls, AsyncClient) else self._blocking
            method = self._methods[cls] = adapt(cls, self._op)
        return method if obj is None else MethodType(method, obj)


def _call(
    op: Callable[Concatenate[ClientBase, P], ops.Op[R]],
) -> _Method[P, R, Coroutine[Any, Any, R]]:
    """Blocking on a :class:`Client`, a coroutine on an :class:`AsyncClient`."""
    return _Method(op, _blocking, _awaited)


def _stream(
    op: Callable[Concatenate[ClientBase, P], ops.Stream[T]],
) -> _Method[P, Iterator[T], AsyncIterator[T]]:
    """An iterator on a :class:`Client`, an async iterator on an :class:`AsyncClient`."""
    return _Method(op, _iterated, _iterated)


class ClientBase:
    """What both clients share; each operation is declared once here, each client drives it (``_drive``)."""

    submit = _call(ops.submit)
    submit_many = _call(ops.submit_many)
    submit_batch = _call(ops.submit_batch)
    issue_prescription = _call(ops.issue_prescription)
    record = _call(ops.record)
    bundle_document = _call(ops.bundle_document)
    bundle = _call(ops.bundle)
    history = _stream(ops.history)
    rx_check = _call(ops.rx_check)
    trace_code = _call(ops.trace_code)
    lineage = _call(ops.lineage)
    consistency_proof = _call(ops.consistency_proof)
    checkpoint = _call(ops.checkpoint)
    wait_anchored = _call(ops.wait_anchored)
    verify = _call(ops.verify)

    def __init__(
        self,
        *,
        base_url: str,
        token: str | None = None,
        org: str | None = None,
        signer: Signer | None = None,
        trust: TrustStore | None = None,
        anchor_checker: AnchorChecker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.org = org
        self._signer = signer
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.verifier = Verifier(trust=trust, anchor_checker=anchor_checker)

    def sign(
        self,
        *,
        kind: str,
        subject: str,
        payload: Any,
        prev: str | None = None,
        timestamp: str | None = None,
    ) -> SignedRecord:
        """Build an envelope for ``payload`` and sign it with this organisation's SM2 key (an ``rx.issue``
        carries its access code's digest: :meth:`Client.issue_prescription` makes the code and attaches it,
        else ACCESS_CODE_DIGEST_MISSING)."""
        if self._signer is None or self.org is None:
            raise ProvenanceError("this client has no organisation key: pass org= and signer=")
        if kind == "rx.issue" and not (isinstance(payload, Mapping) and AccessCode.attached(payload)):
            raise AccessCodeDigestMissing(
                "an rx.issue carries its access code's digest: use issue_prescription, or attach one "
                "(AccessCode.new().attach(resource, rx_id)) and print that code on the slip",
                details={"field": "extension"},
            )
        env = Envelope.create(
            kind=kind, subject=subject, org=self.org, payload=payload, prev=prev, timestamp=timestamp
        )
        return sign_envelope(env, self._signer)

    def _batch(
        self,
        readings: Sequence[Mapping[str, Any]],
        *,
        mn: str | None,
        logger: str | None,
        period_start: datetime,
        period_end: datetime,
        timestamp: str | None,
    ) -> tuple[SignedRecord, dict[str, Any]]:
        """A sensor batch, signed once: an ``env.batch`` of monitoring point ``mn`` (each reading in the JSON
        normal form of an ``env.reading`` payload; a packet's is ``adapters.adapt("env.reading",
        packet).document()``) or a ``gas.batch`` of data logger ``logger`` (gas readings as sent)."""
        if (mn is None) == (logger is None):
            raise ProvenanceError(
                "a batch names either a monitoring point (mn) or a gas data logger (logger)"
            )
        kind, member, source, prefix = (
            ("env.batch", "mn", mn, "station")
            if mn is not None
            else ("gas.batch", "logger", logger, "logger")
        )
        head = {
            member: source,
            "period_start": _second(period_start),
            "period_end": _second(period_end),
            "count": len(readings),
            "root": items_root([canonical_bytes(r) for r in readings]).hex(),
        }
        signed = self.sign(kind=kind, subject=f"{prefix}:{source}", payload=head, timestamp=timestamp)
        return signed, {**head, "readings": list(readings)}

    def _prescription(
        self, medication_request: Mapping[str, Any], rx_id: str, prev: str | None, timestamp: str | None
    ) -> tuple[SignedRecord, dict[str, Any], AccessCode]:
        code = AccessCode.new()
        payload = code.attach(medication_request, rx_id)
        signed = self.sign(
            kind="rx.issue", subject=f"rx:{rx_id}", payload=payload, prev=prev, timestamp=timestamp
        )
        return signed, payload, code

    @classmethod
    def devnet(cls, org: str, *, root: str | Path = ".devnet", gateway: str | None = None) -> Self:
        """A client for one demo organisation of a running devnet (reads its manifest, token and key)."""
        return cls(**cls._devnet_parts(org, root, gateway))

    @staticmethod
    def _devnet_parts(org: str, root: str | Path, gateway: str | None) -> dict[str, Any]:
        root = Path(root)
        manifest = Manifest.load(root / "manifest.json")
        if manifest.find(org) is None:
            raise NotFound(f"organisation '{org}' is not in the devnet manifest")
        trust_path = root / "trust.json"
        # The devnet's own chain checks anchors live; the ProvenanceLog address is pinned from the manifest.
        from provenance.chain.anchor import ChainAnchorChecker

        base_url = gateway or "http://127.0.0.1:8000"
        token = read_text(root / "tokens" / f"{org}.token", what="token file").strip()
        trust = TrustStore.load(trust_path) if trust_path.exists() else None
        checker = ChainAnchorChecker.from_rpc(
            manifest.rpc_url,
            contract=manifest.contract("ProvenanceLog"),
            proofs=GatewayProofs(base_url, token=token),
            seal_keys=trust.seal_keys if trust else (),
        )
        return {
            "base_url": base_url,
            "org": org,
            "token": token,
            "signer": manifest.sm2_key(org),
            "trust": trust,
            "anchor_checker": checker,
        }


class Client(ClientBase):
    """Synchronous client of the gateway."""

    def __init__(
        self, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self._headers,
            timeout=timeout,
            transport=transport if transport is not None else BoundedTransport(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(self, req: Request) -> Any:
        resp = self._http.request(req.method, req.path, json=req.json, params=req.params, headers=req.headers)
        return Api.parse(resp)

    def _run(self, run: Run[R]) -> R:
        for _ in self._drive(run):
            pass  # an Op emits nothing
        return run.result

    def _drive(self, run: Run[Any]) -> Iterator[Any]:
        """Carry out ``run``'s steps with blocking I/O, yielding the items it emits."""
        for step in run:
            if isinstance(step, Request):
                try:
                    run.reply(self._do(step))
                except Exception as exc:
                    run.fail(exc)
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
            else:
                yield step.item


class AsyncClient(ClientBase):
    """Asynchronous client of the gateway (same methods as :class:`Client`, awaitable)."""

    def __init__(
        self, *, timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            timeout=timeout,
            transport=transport if transport is not None else AsyncBoundedTransport(),
        )

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

    async def _run(self, run: Run[R]) -> R:
        async for _ in self._drive(run):
            pass  # an Op emits nothing
        return run.result

    async def _drive(self, run: Run[Any]) -> AsyncIterator[Any]:
        """Carry out ``run``'s steps with awaited I/O, yielding the items it emits."""
        for step in run:
            if isinstance(step, Request):
                try:
                    run.reply(await self._do(step))
                except Exception as exc:
                    run.fail(exc)
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            else:
                yield step.item


def _second(at: datetime) -> str:
    """A batch period bound: RFC 3339 UTC in whole seconds (what ``anchorBatch`` takes)."""
    if at.tzinfo is None or at.microsecond:
        raise ProvenanceError("a batch period bound is an aware datetime in whole seconds")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
