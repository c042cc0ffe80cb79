"""Read access (issue #23, finding 3 and the read part of 12): every role × every read endpoint.

On the real gateway with anchored records of every domain, each demo organisation (and an unregistered one)
reads every record through every read endpoint; the expected outcome is written out here, independently of
the policies in ``adapters/`` (docs/security.md, Read access, is the same table in prose):

- a record a reader may not see answers 404 ``RECORD_NOT_FOUND`` like one that does not exist, is in no
  subject history and no export, and counts in no export total;
- a record whose envelope only it sees: bundles without the payload, 403 ``PAYLOAD_FORBIDDEN`` for
  ``payload=true``;
- a prescription opens to the pharmacy the patient shows the slip to (its access code), and stays open to the
  pharmacy that dispensed it; the check refuses everybody else with ``ACCESS_CODE_REQUIRED`` /
  ``ACCESS_CODE_INVALID`` whether the prescription exists or not;
- ``/metrics`` needs an auditor's, regulator's or log operator's token (or the scrape token), and redirects
  never point at the request's Host.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.guard import SafeRedirects
from provenance.access_code import HEADER, AccessCode
from tests.kit.data_life import collected, countersigned, fresh, now, settled
from tests.kit.gateway import (
    Harness,
    error_code,
    hj212_packets,
    party_meeting,
    rx_dispense,
    rx_issue,
    share_access,
    share_consent,
    share_request,
    workerless_gateway,
)

READERS = (
    "hospital-1",
    "hospital-2",
    "pharmacy-1",
    "pharmacy-2",
    "data-owner",
    "data-user",
    "env-bureau",
    "station-1",
    "station-2",
    "party-branch",
    "auditor",
    "regulator",
    "log-operator",
    "insurer",  # 医保: the prescription chain by role (it settles dispenses)
    "ghost-org",  # a token of an organisation OrgRegistry does not know
)
P, E = "payload", "envelope"  # what a reader sees of a record (absent from a row: nothing)
OVERSIGHT = {"auditor": P, "regulator": P}

# Record (by name) -> reader -> what it sees, with no access code presented.
SEES: dict[str, dict[str, str]] = {
    # hospital-1 issued rx A, pharmacy-1 dispensed it: both read the whole prescription.
    "rx.issue": {"hospital-1": P, "pharmacy-1": P, "insurer": E, **OVERSIGHT},
    "rx.dispense": {"hospital-1": P, "pharmacy-1": P, "insurer": P, **OVERSIGHT},
    # rx B, not dispensed yet: only its hospital (and oversight) until someone shows its code.
    "rx.issue open": {"hospital-1": P, "insurer": E, **OVERSIGHT},
    # data-user asked, data-owner consented, data-user read: the owner reads all, the user the consent too.
    "share.request": {"data-user": P, "data-owner": P, **OVERSIGHT},
    "share.consent": {"data-owner": P, "data-user": P, **OVERSIGHT},
    "share.access": {"data-user": P, "data-owner": P, **OVERSIGHT},
    # A dataset's life: the owner's collection of a new dataset (no one else is party to it yet); the
    # owner's settlement of the request's accesses: the user, party to the dataset, sees only its
    # envelope (prices stay between the two, and the user learns the terms from the owner); the user's
    # countersignature, which it signed and the owner (party to everything of its dataset) reads.
    "data.collected": {"data-owner": P, **OVERSIGHT},
    "data.settled": {"data-owner": P, "data-user": E, **OVERSIGHT},
    "data.countersigned": {"data-user": P, "data-owner": P, **OVERSIGHT},
    # station-1's reading: the station and the environment bureau; not station-2.
    "env.reading": {"station-1": P, "env-bureau": P, **OVERSIGHT},
    "party.record": {"party-branch": P, **OVERSIGHT},
}
# Reader -> the records (by name) its export lists: its own, and the kinds its role reads everywhere.
EXPORTS: dict[str, set[str]] = {
    "auditor": set(SEES),
    "regulator": set(SEES),
    "hospital-1": {"rx.issue", "rx.issue open"},
    "pharmacy-1": {"rx.dispense"},
    "data-user": {"share.request", "share.access", "data.countersigned"},
    "data-owner": {"share.consent", "share.request", "data.collected", "data.settled"},
    "env-bureau": {"env.reading"},
    "station-1": {"env.reading"},
    "party-branch": {"party.record"},
    "insurer": {"rx.issue", "rx.issue open", "rx.dispense"},
}
# Readers whose role reads some kinds everywhere as envelopes only (医保: prescriptions, not their payloads):
# their exports list those without the payload.
ENVELOPE_EXPORTS = {"insurer"}
CHECKERS = {"hospital-1", "hospital-2", "pharmacy-1", "pharmacy-2", "auditor", "regulator"}
METRICS = {"auditor", "regulator", "log-operator"}


@dataclass
class World:
    ids: dict[str, str]  # record name -> record id
    subjects: dict[str, str]  # record name -> subject
    rx_a: str
    rx_b: str
    code_a: AccessCode
    code_b: AccessCode
    since: str
    until: str


def _ok(r: httpx.Response, status: int = 202) -> str:
    assert r.status_code == status, r.text
    rid: str = r.json()["id"]
    return rid


@pytest.fixture(scope="module")
def world(harness: Harness) -> World:
    """Anchored records of every domain, signed by their organisations."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    c = harness.client
    rx_a, rx_b = "RX" + secrets.token_hex(5).upper(), "RX" + secrets.token_hex(5).upper()
    code_a, code_b = AccessCode.new(), AccessCode.new()
    ids = {"rx.issue": _ok(c("hospital-1").submit("rx.issue", rx_issue(rx_a, access_code=code_a)))}
    dispense = c("pharmacy-1").submit(
        "rx.dispense", rx_dispense(rx_a), prev=ids["rx.issue"], access_code=code_a
    )
    ids["rx.dispense"] = _ok(dispense)
    ids["rx.issue open"] = _ok(c("hospital-1").submit("rx.issue", rx_issue(rx_b, access_code=code_b)))
    request_id = "SR" + secrets.token_hex(5)
    ids["share.request"] = _ok(c("data-user").submit("share.request", share_request(request_id, "data-user")))
    consent = share_consent(request_id)
    ids["share.consent"] = _ok(c("data-owner").submit("share.consent", consent))
    consent_digest = harness.record(ids["share.consent"])["payload_digest"]
    access = share_access(request_id, consent_digest, "data-user")
    ids["share.access"] = _ok(c("data-user").submit("share.access", access))
    ids["data.collected"] = _ok(c("data-owner").submit("data.collected", collected(fresh("survey"))))
    time.sleep(1.1)  # the settled period ends after the access (whole seconds)
    settlement = settled(request_id, now(-timedelta(minutes=5)), now(), 1)
    ids["data.settled"] = _ok(c("data-owner").submit("data.settled", settlement))
    digest = harness.record(ids["data.settled"])["payload_digest"]
    countersign = countersigned(settlement, digest)
    ids["data.countersigned"] = _ok(c("data-user").submit("data.countersigned", countersign))
    ids["env.reading"] = _ok(c("station-1").submit("env.reading", hj212_packets(1)[0]))
    meeting = party_meeting("party-branch", "M" + secrets.token_hex(4))
    ids["party.record"] = _ok(c("party-branch").submit("party.record", meeting))
    for rid in ids.values():
        harness.wait_status(rid, "anchored", timeout=60)
    subjects = {name: harness.record(rid)["subject"] for name, rid in ids.items()}
    until = datetime.now(UTC) + timedelta(seconds=1)
    iso = "%Y-%m-%dT%H:%M:%S.%fZ"
    return World(ids, subjects, rx_a, rx_b, code_a, code_b, since.strftime(iso), until.strftime(iso))


def _get(
    harness: Harness, reader: str | None, path: str, code: object = None, **params: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {harness.tokens[reader]}"} if reader else {}
    if code is not None:
        headers[HEADER] = str(code)
    return harness.http.get(path, headers=headers, params=params)


def test_records_and_bundles_follow_the_matrix(harness: Harness, world: World) -> None:
    """Every reader × every record × GET /records/{id} and /records/{id}/bundle (default, payload=true,
    payload=false): visible with or without the payload as the table says, else RECORD_NOT_FOUND."""
    for name, rid in world.ids.items():
        for reader in READERS:
            sees = SEES[name].get(reader)
            rec = _get(harness, reader, f"/api/v1/records/{rid}")
            bundle = _get(harness, reader, f"/api/v1/records/{rid}/bundle")
            full = _get(harness, reader, f"/api/v1/records/{rid}/bundle", payload="true")
            bare = _get(harness, reader, f"/api/v1/records/{rid}/bundle", payload="false")
            where = (name, reader)
            if sees is None:
                for r in (rec, bundle, full, bare):
                    assert r.status_code == 404 and error_code(r) == "RECORD_NOT_FOUND", (where, r.text)
                    assert r.json()["error"]["details"] == {"id": rid}  # as for an id that never existed
                continue
            assert rec.status_code == 200 and rec.json()["id"] == rid, (where, rec.text)
            assert bundle.status_code == 200 and ("payload" in bundle.json()) == (sees == P), where
            assert bare.status_code == 200 and "payload" not in bare.json(), where
            if sees == P:
                assert full.status_code == 200 and "payload" in full.json(), where
            else:
                assert full.status_code == 403 and error_code(full) == "PAYLOAD_FORBIDDEN", where
    # An id that does not exist reads exactly like one the reader may not see.
    missing = _get(harness, "hospital-2", f"/api/v1/records/{'0' * 64}")
    assert missing.status_code == 404 and missing.json()["error"]["details"] == {"id": "0" * 64}


def test_subject_histories_list_only_what_the_reader_sees(harness: Harness, world: World) -> None:
    ours = {rid: name for name, rid in world.ids.items()}
    domain_signers = {  # who can sign records of a subject's domain at all (other tests add records too)
        "rx": {"hospital-1", "hospital-2", "pharmacy-1", "pharmacy-2"},
        "dataset": {"data-owner", "data-user"},
        "station": {"station-1", "station-2", "env-bureau"},
        "branch": {"party-branch"},
    }
    for subject in sorted(set(world.subjects.values())):
        names = [n for n, s in world.subjects.items() if s == subject]
        for reader in READERS:
            r = _get(harness, reader, f"/api/v1/subjects/{subject}/records", limit=500)
            assert r.status_code == 200, r.text
            listed = [item["id"] for item in r.json()["items"]]
            expected = [world.ids[n] for n in names if reader in SEES[n]]
            assert [i for i in listed if i in ours] == expected, (subject, reader)
            domain = subject.split(":", 1)[0]
            if reader not in domain_signers[domain] | set(OVERSIGHT) and not expected:
                # Nothing of a subject it has no part in, not even that it has records.
                assert listed == [] and r.json()["next_cursor"] is None, (subject, reader, listed)


def test_exports_list_own_records_unless_auditor_or_regulator(harness: Harness, world: World) -> None:
    """GET /bundles: each reader's export and its total hold its own records and the kinds its role reads
    everywhere (auditors and regulators: all); never a listing of others' payloads."""
    ours = {rid: name for name, rid in world.ids.items()}
    for reader in READERS:
        for payload in (None, "true"):
            params = {"since": world.since, "until": world.until, "limit": 500}
            r = _get(
                harness, reader, "/api/v1/bundles", **params, **({"payload": payload} if payload else {})
            )
            if payload and reader in ENVELOPE_EXPORTS:
                # Payloads asked of an export holding records it reads as envelopes: refused whole.
                assert r.status_code == 403 and error_code(r) == "PAYLOAD_FORBIDDEN", (reader, r.text)
                continue
            assert r.status_code == 200, (reader, r.text)
            doc = r.json()
            listed = {ours[b["digest"]] for b in doc["items"] if b["digest"] in ours}
            assert listed == EXPORTS.get(reader, set()), (reader, listed)
            assert doc["total"] == len(doc["items"]) and doc["next_cursor"] is None, reader
            for b in doc["items"]:
                if b["digest"] in ours:
                    sees = SEES[ours[b["digest"]]][reader]
                    if sees == E and reader in ENVELOPE_EXPORTS:
                        assert "payload" not in b, (reader, b["digest"])
                        continue
                    assert sees == P and "payload" in b, (reader, b["digest"])


def test_rx_check_needs_the_code_unless_issuer_dispenser_or_oversight(harness: Harness, world: World) -> None:
    path = f"/api/v1/rx/{world.rx_a}/check"
    for reader in READERS:
        r = _get(harness, reader, path)
        if reader not in CHECKERS:
            assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN", (reader, r.text)
        elif reader in SEES["rx.issue"]:  # issuer, dispenser, auditor, regulator
            assert r.status_code == 200 and r.json()["dispensed_by"] == "pharmacy-1", (reader, r.text)
        else:
            assert r.status_code == 403 and error_code(r) == "ACCESS_CODE_REQUIRED", (reader, r.text)
    # The code opens it to any pharmacy; another prescription's code, or a code for none, opens nothing;
    # existence is told only to those who read every prescription.
    assert (
        _get(harness, "pharmacy-2", path, code=world.code_a).json()["issue_record"] == world.ids["rx.issue"]
    )
    for rx, code in ((world.rx_a, world.code_b), ("RX-NONE-" + secrets.token_hex(4), world.code_a)):
        r = _get(harness, "pharmacy-2", f"/api/v1/rx/{rx}/check", code=code)
        assert r.status_code == 403 and error_code(r) == "ACCESS_CODE_INVALID", r.text
    unknown = "RX-NONE-" + secrets.token_hex(4)
    r = _get(harness, "pharmacy-2", f"/api/v1/rx/{unknown}/check")
    assert r.status_code == 403 and error_code(r) == "ACCESS_CODE_REQUIRED", r.text
    r = _get(harness, "auditor", f"/api/v1/rx/{unknown}/check")
    assert r.status_code == 404 and error_code(r) == "RX_UNKNOWN", r.text
    # Text that is no code at all is told apart from a wrong code, whatever the prescription.
    for rx in (world.rx_a, unknown):
        r = _get(harness, "pharmacy-2", f"/api/v1/rx/{rx}/check", code="not-a-code")
        assert r.status_code == 400 and error_code(r) == "ACCESS_CODE_MALFORMED", r.text


def test_the_access_code_opens_its_prescription_and_only_the_issue_payload(
    harness: Harness, world: World
) -> None:
    """The holder of rx B's code (the pharmacy the patient shows the slip to, or a hospital) reads rx B's
    history and issue with its payload; rx A's code reads rx A's dispense only as an envelope; an
    unregistered organisation's token reads nothing even with the code."""
    issue_b, subject_b = world.ids["rx.issue open"], world.subjects["rx.issue open"]
    for reader in ("pharmacy-2", "hospital-2"):
        assert _get(harness, reader, f"/api/v1/records/{issue_b}", code=world.code_b).status_code == 200
        full = _get(harness, reader, f"/api/v1/records/{issue_b}/bundle", code=world.code_b, payload="true")
        assert full.status_code == 200 and full.json()["payload"]["identifier"][0]["value"] == world.rx_b
        listed = _get(harness, reader, f"/api/v1/subjects/{subject_b}/records", code=world.code_b).json()
        assert [i["id"] for i in listed["items"]] == [issue_b]
        # The code is bound to its prescription: rx A's code does not open rx B.
        wrong = _get(harness, reader, f"/api/v1/records/{issue_b}/bundle", code=world.code_a)
        assert wrong.status_code == 404 and error_code(wrong) == "RECORD_NOT_FOUND"
        assert (
            _get(harness, reader, f"/api/v1/subjects/{subject_b}/records", code=world.code_a).json()["items"]
            == []
        )
    # A holder of rx A's code reads its issue (payload) and its dispense (envelope only, another
    # pharmacy's record); it is a reader, not a party: its own export lists neither.
    dispense = world.ids["rx.dispense"]
    env_only = _get(harness, "pharmacy-2", f"/api/v1/records/{dispense}/bundle", code=world.code_a)
    assert env_only.status_code == 200 and "payload" not in env_only.json()
    refused = _get(
        harness, "pharmacy-2", f"/api/v1/records/{dispense}/bundle", code=world.code_a, payload="true"
    )
    assert refused.status_code == 403 and error_code(refused) == "PAYLOAD_FORBIDDEN"
    issue_a = _get(
        harness, "pharmacy-2", f"/api/v1/records/{world.ids['rx.issue']}/bundle", code=world.code_a
    )
    assert issue_a.json()["payload"]["identifier"][0]["value"] == world.rx_a
    exported = _get(harness, "pharmacy-2", "/api/v1/bundles", code=world.code_a, since=world.since)
    assert not {b["digest"] for b in exported.json()["items"]} & set(world.ids.values())
    ghost = _get(harness, "ghost-org", f"/api/v1/records/{issue_b}", code=world.code_b)
    assert ghost.status_code == 404 and error_code(ghost) == "RECORD_NOT_FOUND"


def test_metrics_need_an_oversight_operator_or_scrape_token(harness: Harness, tmp_path: Path) -> None:
    r = harness.http.get("/metrics")
    assert r.status_code == 401 and error_code(r) == "AUTH_REQUIRED"
    r = harness.http.get("/metrics", headers={"Authorization": "Bearer spt_0.nope"})
    assert r.status_code == 401 and error_code(r) == "TOKEN_INVALID"
    for reader in READERS:
        r = _get(harness, reader, "/metrics")
        if reader in METRICS:
            assert r.status_code == 200 and "prov_gw_tree_size" in r.text, reader
        else:
            assert r.status_code == 403 and error_code(r) == "ROLE_FORBIDDEN", (reader, r.text)
    # Prometheus scrapes with a token of its own (PROV_GW_METRICS_TOKEN), which reads nothing else.
    scrape = secrets.token_urlsafe(32)
    with workerless_gateway(harness, tmp_path, "station-1", metrics_token=scrape) as (_, http):
        r = http.get("/metrics", headers={"Authorization": f"Bearer {scrape}"})
        assert r.status_code == 200 and "prov_gw_tree_size" in r.text
        assert http.get("/metrics").status_code == 403  # station-1's own token
        r = http.get("/api/v1/bundles", headers={"Authorization": f"Bearer {scrape}"})
        assert r.status_code == 401 and error_code(r) == "TOKEN_INVALID"


def test_log_and_trust_endpoints_are_public(harness: Harness, world: World) -> None:
    """What verifiers, witnesses and monitors need without an account: the trust file and the log."""
    latest = harness.http.get("/api/v1/checkpoints/latest")
    assert latest.status_code == 200
    size = latest.json()["size"]
    for reader in (None, *READERS):
        for path, params in (
            ("/api/v1/orgs", {}),
            ("/api/v1/checkpoints/latest", {}),
            (f"/api/v1/checkpoints/{size}", {}),
            ("/api/v1/proofs/consistency", {"first": 1, "second": size}),
            ("/api/v1/chain", {}),
            ("/healthz", {}),
        ):
            r = _get(harness, reader, path, **params)
            assert r.status_code == 200, (reader, path, r.text)


@pytest.fixture
def raw_http(harness: Harness) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=harness.server.url, timeout=30, follow_redirects=False) as http:
        yield http


def test_redirects_never_point_at_the_request_host(
    harness: Harness, raw_http: httpx.Client, tmp_path: Path
) -> None:
    """A Host header naming another site must not come back in a redirect (cache poisoning, phishing)."""
    for path, target in (("/verify", "/verify/"), ("/api/v1/orgs/", "/api/v1/orgs")):
        r = raw_http.get(path, headers={"Host": "evil.example"})
        assert r.status_code in (307, 308) and r.headers["location"] == target, (path, r.headers)
    # A redirect whose path reads as a host ("//evil.example/…", a network-path reference) stays a path.
    safe = SafeRedirects(public_url=None)
    assert safe.location(b"http://evil.example//evil.example/x/?q=1") == b"/evil.example/x/?q=1"
    r = raw_http.get(harness.server.url + "//evil.example/verify", headers={"Host": "evil.example"})
    assert r.status_code == 404 or r.headers["location"] == "/evil.example/verify/", r.headers
    # With a public URL configured, redirects point there.
    public = "https://prov.example.cn/gw"
    with workerless_gateway(harness, tmp_path, "auditor", public_url=public) as (_, http):
        r = http.get("/verify", headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code in (307, 308) and r.headers["location"] == public + "/verify/", r.headers
