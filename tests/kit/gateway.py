"""Helpers of the gateway tests: a cuttable relay to the node, the gateway under uvicorn, signed payloads."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from adapters import adapt
from devnet.engines import EngineHandle
from gateway.api.server import server_config
from gateway.core.config import GatewaySettings
from gateway.core.db import Database
from gateway.core.security import mint_token
from gateway.main import create_app
from provenance.access_code import ALPHABET, HEADER, LENGTH, AccessCode
from provenance.crypto import SM2PrivateKey, sm3
from provenance.demo_rx import fresh_code
from provenance.manifest import Manifest
from provenance.records import Envelope, sign_envelope
from provenance.timestamps import format_timestamp
from provenance.trace_code import TRACE_CODE_URL

ASSETS = Path(__file__).resolve().parents[1] / "assets"


# --- a relay in front of the node, to cut the chain off -----------------------------------------------


class Relay:
    """A TCP relay to the node's RPC port; ``down()`` refuses and drops every connection until ``up()``."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port.rstrip("/")))
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        self._up.clear()
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.close()
            self._conns.clear()

    def up(self) -> None:
        self._up.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


# --- the gateway under test ---------------------------------------------------------------------------


def serve_in_thread(config: uvicorn.Config, what: str) -> tuple[uvicorn.Server, threading.Thread]:
    """uvicorn serving ``config`` in a daemon thread, returned once it listens."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
    return server, thread


def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    """The first true value of ``predicate`` polled every 50 ms; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """uvicorn serving one app in a thread."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # The production server configuration (HTTP limits included), on a port of its own.
        self.app = create_app(settings)
        config = server_config(self.app, settings, host="127.0.0.1", port=self.port, log_level="warning")
        self._server, self._thread = serve_in_thread(config, "gateway")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def sign_submission(
    org: str,
    key: SM2PrivateKey,
    kind: str,
    payload: Any,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
    prev: str | None = None,
    subject: str | None = None,
    payload_digest: str | None = None,
) -> dict[str, Any]:
    """A request body: the envelope for ``payload`` (digest as the adapters compute it), signed."""
    if subject is None or payload_digest is None:
        adapted = adapt(kind, payload.encode() if isinstance(payload, str) else payload)
        subject = subject or adapted.subject
        payload_digest = payload_digest or adapted.digest
    env = Envelope(
        kind=kind,  # type: ignore[arg-type]
        subject=subject,  # type: ignore[arg-type]
        org=org,  # type: ignore[arg-type]
        timestamp=timestamp or format_timestamp(datetime.now(UTC)),
        nonce=nonce or secrets.token_hex(16),
        prev=prev,  # type: ignore[arg-type]
        payload_digest=payload_digest,  # type: ignore[arg-type]
    )
    signed = sign_envelope(env, key)
    return {**signed.to_dict(), "payload": payload}


def kit_code(rx_id: str) -> AccessCode:
    """The kit's access code of prescription ``rx_id``, derived from the id so that any test can present it
    (the SDK draws a deployment's codes at random: ``AccessCode.new``)."""
    digest = sm3(b"gateway-kit access code\0" + rx_id.encode("utf-8"))
    return AccessCode("".join(ALPHABET[b % len(ALPHABET)] for b in digest[:LENGTH]))


KIT = object()  # OrgClient.post's default: an rx.dispense or rx.review presents its prescription's kit_code


def _kit_code_of(body: Any) -> str | None:
    record = body.get("record") if isinstance(body, dict) else None
    if not isinstance(record, dict) or record.get("kind") not in ("rx.dispense", "rx.review"):
        return None
    subject = record.get("subject")
    return str(kit_code(subject[3:])) if isinstance(subject, str) and subject.startswith("rx:") else None


@dataclass
class OrgClient:
    """One organisation: its SM2 key and API token, talking to the gateway."""

    org: str
    key: SM2PrivateKey
    token: str
    harness: Harness

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def body(self, kind: str, payload: Any, **kw: Any) -> dict[str, Any]:
        kw.setdefault("org", self.org)
        org = kw.pop("org")
        key = kw.pop("key", self.key)
        return sign_submission(org, key, kind, payload, **kw)

    def post(self, body: Any, *, access_code: Any = KIT, **kw: Any) -> httpx.Response:
        """POST one record; an rx.dispense presents its prescription's :func:`kit_code` unless
        ``access_code`` says otherwise (None: no code; a string: that one)."""
        headers = {**self.headers, **kw.pop("headers", {})}
        code = _kit_code_of(body) if access_code is KIT else access_code
        if code is not None:
            headers[HEADER] = str(code)
        return self.harness.http.post("/api/v1/records", json=body, headers=headers)

    def submit(self, kind: str, payload: Any, *, access_code: Any = KIT, **kw: Any) -> httpx.Response:
        return self.post(self.body(kind, payload, **kw), access_code=access_code)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.harness.http.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)


@dataclass
class Harness:
    network: Manifest
    engine: EngineHandle
    settings: GatewaySettings
    relay: Relay
    server: Server
    tokens: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server.url, timeout=30)

    def client(self, org: str, *, key: SM2PrivateKey | None = None) -> OrgClient:
        return OrgClient(org=org, key=key or self.network.sm2_key(org), token=self.tokens[org], harness=self)

    def restart(self) -> None:
        """Stop the gateway and start a new one on the same database (a process restart)."""
        self.http.close()  # first: an open keep-alive connection holds up uvicorn's graceful shutdown
        self.server.stop()
        self.server = Server(self.settings)
        self.http = httpx.Client(base_url=self.server.url, timeout=30)

    def wait(self, predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
        return wait_until(predicate, timeout=timeout, what=what)

    def record(self, record_id: str) -> dict[str, Any]:
        # The auditor reads every record (docs/security.md, Read access).
        r = self.http.get(
            f"/api/v1/records/{record_id}", headers={"Authorization": f"Bearer {self.tokens['auditor']}"}
        )
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def wait_status(self, record_id: str, status: str = "anchored", timeout: float = 20.0) -> dict[str, Any]:
        order = ("accepted", "sequenced", "anchored")

        def reached() -> dict[str, Any] | None:
            rec = self.record(record_id)
            return rec if order.index(rec["status"]) >= order.index(status) else None

        result: dict[str, Any] = self.wait(reached, timeout=timeout, what=f"{record_id} {status}")
        return result

    def wait_chain(self, record_id: str, timeout: float = 20.0) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            rec = self.record(record_id)
            return rec if rec["chain_status"] in ("confirmed", "rejected") else None

        result: dict[str, Any] = self.wait(done, timeout=timeout, what=f"{record_id} on chain")
        return result


def gateway_settings(tmp: Path, network: Manifest, rpc_url: str, **overrides: Any) -> GatewaySettings:
    """Settings for a test gateway: its own SQLite file (or PROV_TEST_PG_URL), fast worker cadence."""
    assert network.path is not None
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'gateway.db'}",
        "kek_file": tmp / "gateway.kek",  # also on PostgreSQL: never the default .devnet/gateway.kek
        "manifest_path": network.path,
        "rpc_url": rpc_url,
        "checkpoint_interval": 0.2,
        "registry_poll": 0.1,
        "chain_retry": 0.2,
        "worker_idle": 0.02,
        "token_cache_ttl": 1.0,
        **overrides,
    }
    return GatewaySettings(**values)


@contextlib.contextmanager
def workerless_gateway(
    harness: Harness, tmp: Path, org: str, **overrides: Any
) -> Iterator[tuple[GatewaySettings, httpx.Client]]:
    """A second gateway with its workers off, on a SQLite database of its own, and an HTTP client with
    ``org``'s token for it. It logs and anchors nothing (so never into the harness's ProvenanceLog): its
    backlog only grows and its records stay accepted."""
    settings = gateway_settings(
        tmp, harness.network, harness.network.rpc_url, start_workers=False, **overrides
    )
    db = Database(settings.database_url)
    try:
        db.create_all()
        token = mint_token(db, org, label="test")
    finally:
        db.dispose()
    server = Server(settings)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            yield settings, http
    finally:
        server.stop()


# --- payload builders ---------------------------------------------------------------------------------


def new_rx_id() -> str:
    """A fresh prescription id (``RX`` and ten upper-case hex digits): no test sees another's records."""
    return "RX" + secrets.token_hex(5).upper()


def rx_issue(
    rx_id: str, *, valid_for: timedelta = timedelta(days=3), access_code: AccessCode | None = None
) -> dict[str, Any]:
    """The golden MedicationRequest with a fresh id and a validity period around now, carrying the digest
    of ``access_code`` (the code on the patient's slip; by default the prescription's :func:`kit_code`)."""
    obj: dict[str, Any] = json.loads((ASSETS / "fhir" / "rx-issue-amoxicillin.json").read_text("utf-8"))
    now = datetime.now(UTC)
    obj["id"] = rx_id
    obj["identifier"][0]["value"] = rx_id
    obj["authoredOn"] = iso_second(now - timedelta(minutes=5))
    obj["dispenseRequest"]["validityPeriod"] = {
        "start": iso_second(now - timedelta(minutes=5)),
        "end": iso_second(now + valid_for),
    }
    return (access_code or kit_code(rx_id)).attach(obj, rx_id)


def with_trace_codes(obj: dict[str, Any], codes: list[str]) -> dict[str, Any]:
    """``obj`` (a MedicationDispense, changed in place) listing ``codes`` as its boxes' traceability codes,
    in place of any it listed."""
    kept = [e for e in obj.get("extension", []) if e.get("url") != TRACE_CODE_URL]
    obj["extension"] = [*kept, *({"url": TRACE_CODE_URL, "valueString": c} for c in codes)]
    return obj


def hand_over(obj: dict[str, Any], boxes: int) -> dict[str, Any]:
    """``obj`` (a MedicationDispense in boxes, changed in place) handing over ``boxes`` boxes, each with a
    fresh code: a dispense in boxes lists one code per box."""
    obj["quantity"]["value"] = boxes
    return with_trace_codes(obj, [fresh_code() for _ in range(boxes)])


def rx_dispense(rx_id: str, codes: list[str] | None = None) -> dict[str, Any]:
    """The golden MedicationDispense for ``rx_id``, handed over now, listing ``codes``: by default one fresh
    random code per box (2 盒), so no two dispenses of a test run hand over the same box."""
    obj: dict[str, Any] = json.loads((ASSETS / "fhir" / "rx-dispense-amoxicillin.json").read_text("utf-8"))
    if codes is None:
        hand_over(obj, int(obj["quantity"]["value"]))
    else:
        with_trace_codes(obj, codes)
    now = datetime.now(UTC)
    obj["id"] = "DS" + secrets.token_hex(6)
    obj["identifier"][0]["value"] = obj["id"]
    obj["authorizingPrescription"] = [{"reference": f"MedicationRequest/{rx_id}"}]
    obj["whenPrepared"] = iso_second(now - timedelta(seconds=30))
    obj["whenHandedOver"] = iso_second(now)
    return obj


def rx_revoke(rx_id: str) -> dict[str, Any]:
    return {"rx_id": rx_id, "reason": "患者青霉素皮试阳性", "revoked_at": iso_second(datetime.now(UTC))}


def rx_review(rx_id: str, decision: str = "approved") -> dict[str, Any]:
    """A pharmacist's review (审方) of ``rx_id``, made now."""
    reason = "用法用量适宜，无配伍禁忌" if decision == "approved" else "剂量超出说明书范围"
    return {
        "rx_id": rx_id,
        "decision": decision,
        "reason": reason,
        "reviewed_at": iso_second(datetime.now(UTC)),
    }


def rx_settle(rx_id: str, dispense_record: str, settlement_id: str | None = None) -> dict[str, Any]:
    """医保's settlement of the dispense ``dispense_record`` of ``rx_id``, made now."""
    return {
        "rx_id": rx_id,
        "dispense_record": dispense_record,
        "settlement_id": settlement_id or "YB" + secrets.token_hex(6).upper(),
        "fund_paid": "23.40",
        "personal_paid": "5.85",
        "settled_at": iso_second(datetime.now(UTC)),
    }


def share_request(request_id: str, requester: str, dataset: str = "health-stats") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "dataset": dataset,
        "requester": requester,
        "fields": ["person_id_hash", "household_district", "insured_status"],
        "purpose": "城乡居民医保参保核查",
        "requested_at": iso_second(datetime.now(UTC) - timedelta(minutes=1)),
    }


def share_consent(
    request_id: str, dataset: str = "health-stats", *, valid_for: timedelta = timedelta(days=30)
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "request_id": request_id,
        "dataset": dataset,
        "fields": ["person_id_hash", "insured_status"],
        "purpose": "城乡居民医保参保核查",
        "granted_at": iso_second(now - timedelta(seconds=30)),
        "expires_at": iso_second(now + valid_for),
    }


def consented(harness: Harness, dataset: str = "health-stats") -> tuple[str, str, str]:
    """A request of data-user consented by data-owner, both accepted: the request id, the consent's payload
    digest (what a ``share.access`` names) and the consent's record id."""
    request_id = "REQ-" + secrets.token_hex(4)
    r = harness.client("data-user").submit("share.request", share_request(request_id, "data-user", dataset))
    assert r.status_code == 202, r.text
    r = harness.client("data-owner").submit("share.consent", share_consent(request_id, dataset))
    assert r.status_code == 202, r.text
    consent_id = str(r.json()["id"])
    return request_id, str(harness.record(consent_id)["payload_digest"]), consent_id


def share_revoke_consent(request_id: str, dataset: str = "health-stats") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "dataset": dataset,
        "reason": "项目结束",
        "revoked_at": iso_second(datetime.now(UTC)),
    }


def share_access(
    request_id: str,
    consent_digest: str,
    accessor: str,
    dataset: str = "health-stats",
    fields: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "consent_digest": consent_digest,
        "dataset": dataset,
        "fields": fields or ["person_id_hash"],
        "purpose": "城乡居民医保参保核查",
        "accessor": accessor,
        "accessed_at": iso_second(datetime.now(UTC)),
    }


def party_meeting(branch: str, meeting_id: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((ASSETS / "party" / "meeting-branch-assembly.json").read_text("utf-8"))
    obj["branch_id"] = branch
    obj["meeting_id"] = meeting_id
    obj["held_at"] = iso_second(datetime.now(UTC) - timedelta(hours=1))
    return obj


def party_membership(
    branch: str, stage: str, previous: str | None, member: str | None = None
) -> dict[str, Any]:
    """A membership record: ``member`` of ``branch`` reaches ``stage`` from ``previous``. Member ids are
    network-wide (a member is at one branch at a time): by default one of this branch's own."""
    return {
        "type": "membership",
        "branch_id": branch,
        "member_id": member or f"{branch}.A017",
        "stage": stage,
        "previous_stage": previous,
        "effective_at": "2026-11-20T16:00:00+08:00",
        "approved_by": "MTG-2026-11-01",
    }


def hj212_packet(name: str = "air-realtime-2011.txt") -> str:
    return (ASSETS / "hj212" / name).read_bytes().decode("ascii")


def tamper_signature(body: dict[str, Any]) -> dict[str, Any]:
    sig = bytearray(base64.b64decode(body["signature"]))
    sig[-1] ^= 0x01
    return {**body, "signature": base64.b64encode(bytes(sig)).decode()}


# The monitoring points devnet.deploy registers in EnvMonitoring: station-1's (the golden packets') and
# station-2's. A reading under another organisation's MN is refused (STATION_NOT_OPERATOR).
STATION_1_MN = "44030020261125FQ0007"
STATION_2_MN = "33010020261125WS0001"


# Single readings of a station are recorded once per (MN, CN, DataTime), within the gateway's backdating
# window (72 h) and never dated in the future: every packet this process makes has its own second, counted
# from 48 hours before the run began (the first 100,000 for calls without ``start``, then those with it).
_SERIES_START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=48)
_issued = itertools.count()
_EXPLICIT = 100_000


def hj212_packets(n: int, *, mn: str | None = None, start: int | None = None) -> list[str]:
    """``n`` distinct valid HJ 212 packets (the golden real-time packet with fresh DataTimes, QNs and
    values), each dated a second of its own: numbered from ``start`` (a series made in parts, up to
    72,800), else the next free seconds of this process."""
    import dataclasses

    from adapters import hj212

    base = hj212.parse_packet(hj212_packet().encode())
    seconds = (
        [next(_issued) for _ in range(n)] if start is None else [_EXPLICIT + start + i for i in range(n)]
    )
    out = []
    for i in seconds:
        pollutants = {code: dict(f) for code, f in base.pollutants.items()}
        pollutants["a21026"]["Rtd"] = f"{10 + i % 90}.{i % 10}"
        stamp = (_SERIES_START + timedelta(seconds=i, hours=8)).strftime("%Y%m%d%H%M%S")  # local: UTC+8
        cp = {**base.cp, "DataTime": stamp}
        p = dataclasses.replace(base, qn=stamp + "000", mn=mn or base.mn, cp=cp, pollutants=pollutants)
        out.append(p.encode())
    return out


def iso_second(t: datetime) -> str:
    """An instant as RFC 3339 UTC in whole seconds (a payload's time, a batch period bound)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hj212_series(
    mn: str,
    start: datetime,
    n: int,
    *,
    template: str = "air-realtime-2011.txt",
    vary: Callable[[int, dict[str, dict[str, str]]], None] | None = None,
) -> list[str]:
    """``n`` HJ 212 packets of ``mn`` like ``template`` (tests/assets/hj212), one a second from ``start``
    (DataTime is local, UTC+8); ``vary(i, pollutants)`` changes reading i's values (default: its SO2)."""
    import dataclasses

    from adapters import hj212

    def so2(i: int, pollutants: dict[str, dict[str, str]]) -> None:
        pollutants["a21026"]["Rtd"] = f"{10 + i % 90}.{i % 10}"

    base = hj212.parse_packet(hj212_packet(template).encode())
    out = []
    for i in range(n):
        local = start + timedelta(seconds=i, hours=8)
        stamp = local.strftime("%Y%m%d%H%M%S")
        pollutants = {code: dict(f) for code, f in base.pollutants.items()}
        (vary or so2)(i, pollutants)
        cp = {**base.cp, "DataTime": stamp}
        packet = dataclasses.replace(base, qn=stamp + "000", mn=mn, cp=cp, pollutants=pollutants)
        out.append(packet.encode())
    return out


def batch_payload(
    source: tuple[str, str],
    items: list[Any],
    start: datetime,
    end: datetime,
    leaf: Callable[[int, Any], bytes],
    **head: Any,
) -> dict[str, Any]:
    """A batch submission payload (``env.batch``, ``gas.batch``): the head its source (``(field, id)``) signs,
    with the Merkle root over the items' canonical bytes (``leaf``), and the items as ``readings``; ``head``
    overrides members of the head."""
    from adapters.batch.intake import batch_root
    from provenance.errors import ProvenanceError

    def safe(i: int, r: Any) -> bytes:
        try:
            return leaf(i, r)
        except ProvenanceError:
            return b"not a reading"  # the gateway must refuse it before it looks at the root

    doc = {
        source[0]: source[1],
        "period_start": iso_second(start),
        "period_end": iso_second(end),
        "count": len(items),
        "root": batch_root([safe(i, r) for i, r in enumerate(items)]).hex(),
        "readings": items,
    }
    return {**doc, **head}


def env_batch(items: list[Any], mn: str, start: datetime, end: datetime, **head: Any) -> dict[str, Any]:
    """An ``env.batch`` submission payload of station ``mn`` (its readings as packets or JSON forms)."""

    def leaf(_i: int, r: Any) -> bytes:
        return adapt("env.reading", r.encode() if isinstance(r, str) else r).canonical

    return batch_payload(("mn", mn), items, start, end, leaf, **head)


def register_station(network: Manifest, org: str = "station-1") -> str:
    """A monitoring point of its own (periods only move forward, and every gateway of a session shares the
    chain): registered in EnvMonitoring by the bureau, operated by ``org``; its MN."""
    from web3 import Web3

    from provenance.chain.contracts import at, chain_key, org_id, transact

    mn = "T" + secrets.token_hex(8).upper()
    w3 = Web3(Web3.HTTPProvider(network.rpc_url))
    env = at(w3, "EnvMonitoring", network.contracts["EnvMonitoring"])
    fn = env.functions.registerStation(chain_key("station", mn), org_id(org), b"\0" * 32)
    transact(w3, fn, network.account("env-bureau"))
    return mn


def chain_lead(harness: Harness) -> float:
    """Seconds the chain's clock (the next block's earliest timestamp) runs ahead of ours: the node stamps
    each block at least a second after its parent, so a burst of transactions (the deployment's) moves it
    ahead. Contracts check times against it, and so does the gateway."""
    from web3 import Web3

    head = Web3(Web3.HTTPProvider(harness.network.rpc_url)).eth.get_block("latest")["timestamp"]
    return max(0.0, head + 1 - time.time())


def trust_path(network: Manifest) -> Path:
    """The trust file of ``network``: ``trust.json`` beside ``manifest.json``, ``trust-X.json`` beside a
    variant ``manifest-X.json`` (a gateway anchoring into a ProvenanceLog of its own)."""
    assert network.path is not None
    return network.path.with_name(network.path.name.replace("manifest", "trust", 1))


def verify_bundle(bundle: dict[str, Any], harness: Harness) -> None:
    """Verify a bundle as an auditor would: pinned keys (trust file), anchor looked up on chain and checked
    against the anchors around it with the gateway's consistency proofs."""
    from provenance.chain.anchor import ChainAnchorChecker
    from provenance.client import GatewayProofs
    from provenance.log.bundle import EvidenceBundle
    from provenance.verification.trust import TrustStore
    from provenance.verification.verify import Verifier

    network = harness.network
    assert network.path is not None
    trust = TrustStore.load(trust_path(network))  # the orgs' and the log's keys
    proofs = GatewayProofs(harness.server.url, token=next(iter(harness.tokens.values()), None))
    try:
        checker = ChainAnchorChecker.from_rpc(
            network.rpc_url, contract=network.contracts["ProvenanceLog"], proofs=proofs
        )
        Verifier(trust=trust, anchor_checker=checker).verify(EvidenceBundle.from_dict(bundle))
    finally:
        proofs.close()


# --- the invariant of every acceptance (issue #23, finding 4) -----------------------------------------


def accepted_since(harness: Harness, since: float) -> list[str]:
    """Ids of the records the harness's gateway accepted at or after ``since`` (epoch seconds), in order."""
    from sqlmodel import col, select

    from gateway.models import Record

    db = Database(harness.settings.database_url)
    try:
        with db.session() as s:
            rows = s.exec(select(Record.id).where(col(Record.accepted_at) >= since).order_by(col(Record.seq)))
            return list(rows)
    finally:
        db.dispose()


def check_accepted(harness: Harness, record_ids: list[str], *, timeout: float = 60.0) -> None:
    """What a 202 promises, for each record: it is logged and anchored, its evidence bundle (payload
    included, as its signer reads it) verifies as an auditor verifies it (schema, pinned keys, proof, anchor
    on chain; the /verify page applies the same schema), and every read of it answers 2xx: the record, its
    bundle, its subject's history, and for a prescription the pharmacies' check. Call it at the end of every
    test or fuzz run that submits records (``accepted_since`` gives the ids of a run)."""
    from urllib.parse import quote

    from provenance.records import load_json

    auditor = harness.client("auditor")
    subjects: set[str] = set()
    for rid in record_ids:
        record = harness.wait_status(rid, "anchored", timeout=timeout)
        signer = harness.client(record["org"])
        for reader in (auditor, signer):
            r = reader.get(f"/api/v1/records/{rid}")
            assert r.status_code == 200, (rid, r.status_code, r.text)
        r = signer.get(f"/api/v1/records/{rid}/bundle", params={"payload": "true"})
        assert r.status_code == 200, (rid, r.status_code, r.text)
        bundle = load_json(r.content, what="bundle")  # strict: no key twice, no NaN
        assert "payload" in bundle, rid
        verify_bundle(bundle, harness)
        r = auditor.get(f"/api/v1/records/{rid}/bundle")
        assert r.status_code == 200, (rid, r.status_code, r.text)
        subjects.add(record["subject"])
    for subject in subjects:
        path = f"/api/v1/subjects/{quote(subject, safe=':')}/records"
        after: int | None = 0
        while after is not None:
            r = auditor.get(path, params={"limit": 500, "after": after})
            assert r.status_code == 200, (subject, r.status_code, r.text)
            after = r.json()["next_cursor"]
        if subject.startswith("rx:"):
            r = auditor.get(f"/api/v1/rx/{quote(subject.removeprefix('rx:'), safe='')}/check")
            assert r.status_code == 200, (subject, r.status_code, r.text)


def accepted(response: httpx.Response) -> str:
    """The record id of a 202 answer (which it must be)."""
    assert response.status_code == 202, response.text
    record_id: str = response.json()["id"]
    return record_id


def error_code(response: httpx.Response) -> str:
    """The error code of an error response (and a check of the error body's shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    code: str = body["error"]["code"]
    return code


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The details of an error response, which must be ``status`` with ``code``."""
    assert (response.status_code, error_code(response)) == (status, code), response.text
    details: dict[str, Any] = response.json()["error"]["details"]
    return details
