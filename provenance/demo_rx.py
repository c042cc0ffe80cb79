"""``provenance demo --devnet``: the prescription chain on a running devnet, through the SDK as each party
would run it: a hospital issues (FHIR MedicationRequest), a licensed pharmacist approves (审方), a pharmacy
dispenses two boxes with their traceability codes (药品追溯码), 医保 settles; then an auditor traces the
prescription (each step verified against pinned keys and the live anchor) and a regulator looks a box up.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from provenance.trace_code import TRACE_CODE_URL

_DRUG = {
    "coding": [
        {
            "system": "http://www.nhsa.gov.cn/fhir/CodeSystem/yb-drug",
            "code": "XJ01CAA040A001010100139",
            "display": "阿莫西林胶囊 0.25g×24粒",
        }
    ],
    "text": "阿莫西林胶囊",
}
_BOXES = {"value": 2, "unit": "盒", "system": "http://unitsofmeasure.org", "code": "{box}"}
_PATIENT = {"reference": "Patient/PID-DEMO-0001"}
# GS1's own example GTIN (General Specifications): a demo box's GS1 DataMatrix carries it.
DEMO_GTIN = "09506000134352"


def _at(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def medication_request(rx_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """A sample outpatient MedicationRequest (two boxes of amoxicillin), valid for three days from ``now``."""
    now = now or datetime.now(UTC)
    start = now - timedelta(minutes=1)
    return {
        "resourceType": "MedicationRequest",
        "id": rx_id,
        "identifier": [{"system": "urn:oid:1.2.156.112604.1.2.1.rx", "value": rx_id}],
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": _DRUG,
        "subject": _PATIENT,
        "authoredOn": _at(start),
        "requester": {"reference": "Practitioner/D1024"},
        "dosageInstruction": [{"text": "口服，一次0.5g（2粒），一日3次，饭后服用"}],
        "dispenseRequest": {
            "validityPeriod": {"start": _at(start), "end": _at(now + timedelta(days=3))},
            "numberOfRepeatsAllowed": 0,
            "quantity": _BOXES,
        },
    }


def medication_dispense(rx_id: str, codes: list[str], *, now: datetime | None = None) -> dict[str, Any]:
    """A sample MedicationDispense of ``rx_id`` handing over one box per code in ``codes`` (as scanned)."""
    now = now or datetime.now(UTC)
    dispense_id = "DS" + secrets.token_hex(6).upper()
    return {
        "resourceType": "MedicationDispense",
        "id": dispense_id,
        "identifier": [{"system": "urn:oid:1.2.156.112604.9.7.dispense", "value": dispense_id}],
        "status": "completed",
        "medicationCodeableConcept": _DRUG,
        "subject": _PATIENT,
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx_id}"}],
        "quantity": {**_BOXES, "value": len(codes)},
        "whenHandedOver": _at(now),
        "extension": [{"url": TRACE_CODE_URL, "valueString": c} for c in codes],
    }


def fresh_code() -> str:
    """A random 20-digit 码上放心 code: a box never handed over before (a reused one is TRACE_CODE_REUSED)."""
    return "8" + "".join(secrets.choice("0123456789") for _ in range(19))


def demo_codes() -> list[str]:
    """Two fresh boxes: a 20-digit 码上放心 code and a GS1 DataMatrix scanned raw (``]d2``, FNC1 as GS)."""
    nmpa = fresh_code()
    # No 0, 1 or 2: a serial holding an AI (10, 17, 21) reads as two boxes, TRACE_CODE_AMBIGUOUS (F6-1).
    serial = "SN" + "".join(secrets.choice("ABCDEFGHJK3456789") for _ in range(10))
    return [nmpa, f"]d201{DEMO_GTIN}17{_expiry()}\x1d21{serial}"]


def _expiry() -> str:
    return (datetime.now(UTC) + timedelta(days=700)).strftime("%y%m%d")


def run_rx_demo(*, root: Path, gateway: str | None, console: Console, timeout: float = 60.0) -> str:
    """Issue → review → dispense with codes → settle on the devnet at ``root``; trace it; return the rx id."""
    from provenance.client import Client

    rx = "RX-DEMO-" + secrets.token_hex(4).upper()
    subject = f"rx:{rx}"
    codes = demo_codes()
    now = datetime.now(UTC)
    with Client.devnet("hospital-1", root=root, gateway=gateway) as hospital:
        issued = hospital.issue_prescription(medication_request(rx), rx_id=rx)
    slip = issued.access_code  # printed on the patient's slip: it opens the prescription to a pharmacy
    console.print(f"hospital-1 issued {subject} (record {issued.receipt.id[:16]}…); slip code {slip}")
    with Client.devnet("pharmacist-1", root=root, gateway=gateway) as pharmacist:
        review = {"rx_id": rx, "decision": "approved", "reason": "用法用量适宜", "reviewed_at": _at(now)}
        signed = pharmacist.sign(kind="rx.review", subject=subject, payload=review)
        reviewed = pharmacist.submit(signed, review, access_code=slip)
    console.print(f"pharmacist-1 approved it (审方, record {reviewed.id[:16]}…)")
    with Client.devnet("pharmacy-1", root=root, gateway=gateway) as pharmacy:
        dispense = medication_dispense(rx, codes)
        signed = pharmacy.sign(kind="rx.dispense", subject=subject, payload=dispense, prev=issued.receipt.id)
        dispensed = pharmacy.submit(signed, dispense, access_code=slip)
    console.print(
        f"pharmacy-1 dispensed 2 boxes (record {dispensed.id[:16]}…), codes {codes[0]} and a GS1 scan"
    )
    with Client.devnet("insurer", root=root, gateway=gateway) as insurer:
        settle = {
            "rx_id": rx,
            "dispense_record": dispensed.id,
            "settlement_id": "YB" + secrets.token_hex(6).upper(),
            "fund_paid": "23.40",
            "personal_paid": "5.85",
            "settled_at": _at(datetime.now(UTC)),
        }
        settled = insurer.submit(insurer.sign(kind="rx.settle", subject=subject, payload=settle), settle)
    console.print(f"insurer (医保) settled it: fund 23.40, personal 5.85 (record {settled.id[:16]}…)")

    table = Table(title=f"{subject}: the whole chain, each step verified (pinned keys, live anchor)")
    for col in ("step", "kind", "organisation", "record", "verified"):
        table.add_column(col)
    with Client.devnet("auditor", root=root, gateway=gateway) as auditor:
        for i, item in enumerate(auditor.history(subject), 1):
            bundle = auditor.wait_anchored(item["id"], timeout=timeout)
            auditor.verifier.verify(bundle)  # raises, naming the step, unless verified
            table.add_row(str(i), item["kind"], item["org"], item["id"][:16] + "…", "✓ anchored")
    console.print(table)
    with Client.devnet("regulator", root=root, gateway=gateway) as regulator:
        box = regulator.trace_code(codes[1])
    use = box["dispense"]
    console.print(
        f"regulator's look-up of box {box['code']}: dispensed by {use['pharmacy']} for rx:{use['rx_id']} "
        f"at {use['handed_over_at']} (record {use['record'][:16]}…)"
    )
    tokens = root / "tokens"
    console.print(
        f"trace it yourself: [bold]provenance trace {subject} --token-file {tokens / 'auditor.token'}"
        f" --trust {root / 'trust.json'}[/bold]"
    )
    return rx
