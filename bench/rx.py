"""``bench/gateway.py --rx N``: the cost of a dispense that hands over 10 boxes by their traceability codes,
beside a plain dispense of the same drug counted in capsules (240 粒, no codes: a dispense in boxes must
list every box's code), on one gateway process.

Per variant, on N prescriptions issued and reviewed beforehand (not measured): the 202's latency (one
request at a time: p50, p99 ms), the gateway process's CPU per dispense (ms, workers included, its contract
call too), the time from the 202 to the chain's confirmation (p50 s) and the gas of the contract call
(``dispense`` vs ``dispenseWithCodes``: 10 storage slots more).
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
from web3 import Web3

from gateway.core.db import Database
from gateway.core.security import mint_token
from provenance.access_code import HEADER
from provenance.manifest import Manifest
from tests.kit.gateway import hand_over, kit_code, rx_dispense, rx_issue, rx_review, sign_submission

BOXES = 10
# The plain variant hands over the same drug counted in capsules: a dispense in boxes must list every box's
# code, one in capsules cannot be counted against boxes and lists none here.
CAPSULES = {"value": 24 * BOXES, "unit": "粒", "system": "http://unitsofmeasure.org", "code": "{capsule}"}
ORGS = ("hospital-1", "pharmacist-1", "pharmacy-1")


def tokens(db_url: str) -> dict[str, str]:
    """API tokens of the organisations the prescription chain needs (the schema exists already)."""
    db = Database(db_url)
    try:
        return {org: mint_token(db, org) for org in ORGS}
    finally:
        db.dispose()


def _issue(rx: str, coded: bool) -> dict[str, Any]:
    obj = rx_issue(rx)
    if coded:
        obj["dispenseRequest"]["quantity"]["value"] = BOXES  # ten boxes prescribed, so ten may be handed over
    else:
        obj["dispenseRequest"]["quantity"] = dict(CAPSULES)
    return obj


def _dispense(rx: str, coded: bool) -> dict[str, Any]:
    if coded:
        return hand_over(rx_dispense(rx), BOXES)
    obj = rx_dispense(rx, [])
    obj["quantity"] = dict(CAPSULES)
    return obj


class Chain:
    """The three parties' submissions to one gateway, each with its token (and the slip's code)."""

    def __init__(self, url: str, manifest: Manifest, keys: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.manifest = manifest
        self.keys = keys

    def post(self, org: str, kind: str, payload: dict[str, Any], rx: str) -> httpx.Response:
        body = sign_submission(org, self.manifest.sm2_key(org), kind, payload)
        headers = {"Authorization": f"Bearer {self.keys[org]}"}
        if kind in ("rx.review", "rx.dispense"):
            headers[HEADER] = str(kit_code(rx))
        return self.http.post("/api/v1/records", json=body, headers=headers)

    def record(self, rid: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.http.get(
            f"/api/v1/records/{rid}", headers={"Authorization": f"Bearer {self.keys['pharmacy-1']}"}
        ).json()
        return doc

    def reviewed(self, n: int, coded: bool) -> list[str]:
        """``n`` prescriptions issued and approved, ready to be dispensed (in boxes when ``coded``)."""
        out = []
        for _ in range(n):
            rx = "RXB" + secrets.token_hex(6).upper()
            for org, kind, payload in (
                ("hospital-1", "rx.issue", _issue(rx, coded)),
                ("pharmacist-1", "rx.review", rx_review(rx)),
            ):
                r = self.post(org, kind, payload, rx)
                if r.status_code != 202:
                    raise RuntimeError(f"{kind} of {rx}: {r.status_code} {r.text[:300]}")
            out.append(rx)
        return out


def measure(
    chain: Chain, rxs: list[str], coded: bool, cpu: Callable[[], float], w3: Web3
) -> dict[str, float]:
    """One variant: latency, CPU per dispense, time to the chain's confirmation, gas."""
    latencies, ids, sent = [], [], []
    c0 = cpu()
    for rx in rxs:
        payload = _dispense(rx, coded)
        t0 = time.perf_counter()
        r = chain.post("pharmacy-1", "rx.dispense", payload, rx)
        latencies.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 202:
            raise RuntimeError(f"dispense of {rx}: {r.status_code} {r.text[:300]}")
        ids.append(r.json()["id"])
        sent.append(time.perf_counter())
    confirmed, gas = [], []
    for rid, t in zip(ids, sent, strict=True):
        while (rec := chain.record(rid))["chain_status"] not in ("confirmed", "rejected"):
            time.sleep(0.02)
        if rec["chain_status"] != "confirmed":
            raise RuntimeError(f"the chain refused dispense {rid}: {rec.get('chain_error')}")
        confirmed.append(time.perf_counter() - t)
        gas.append(float(w3.eth.get_transaction_receipt(rec["chain_tx"])["gasUsed"]))
    cpu_ms = (cpu() - c0) / len(rxs) * 1000
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "cpu_ms": cpu_ms,
        # From each 202, in submission order: the last ones wait behind the earlier ones' calls.
        "confirmed_p50": statistics.median(confirmed),
        "gas": statistics.median(gas),
    }


def run(url: str, manifest: Manifest, db_url: str, n: int, cpu: Callable[[], float]) -> dict[str, Any]:
    """Both variants on the gateway at ``url``: {"plain": …, "codes": …}."""
    chain = Chain(url, manifest, tokens(db_url))
    w3 = Web3(Web3.HTTPProvider(manifest.rpc_url))
    try:
        plain, coded = chain.reviewed(n, False), chain.reviewed(n, True)
        # Alternating would mix the two; each variant gets its own prescriptions, plain first.
        return {
            "plain": measure(chain, plain, False, cpu, w3),
            f"{BOXES} codes": measure(chain, coded, True, cpu, w3),
        }
    finally:
        chain.http.close()


def report(results: dict[str, dict[str, Any]]) -> None:
    """The rx figures, one line per database and variant."""
    print(
        f"rx.dispense of {BOXES} boxes with their codes beside {CAPSULES['value']} {CAPSULES['unit']} without"
        " (plain), one request at a time (gateway CPU includes its contract call)"
    )
    head = ("database", "dispense", "p50 ms", "p99 ms", "cpu ms", "confirmed p50 s", "gas")
    widths = (-11, -10, 8, 8, 8, 16, 9)
    print(" ".join(f"{h:{'<' if w < 0 else '>'}{abs(w)}}" for h, w in zip(head, widths, strict=True)))
    for name, variants in results.items():
        for variant, r in variants.items():
            print(
                f"{name:<11} {variant:<10} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['cpu_ms']:>8.1f}"
                f" {r['confirmed_p50']:>16.2f} {r['gas']:>9,.0f}"
            )
