"""Property test: on generated bundles, the /verify page and `provenance verify` agree, and neither crashes.

Each example is a batch of bundles (one page load, the export view), each either
- a JSON-level mutation of a real bundle: a value replaced by any JSON (huge and float-written integers,
  deep nesting, odd Unicode), a property added (``constructor``, ``__proto__`` …) or removed; or a text
  mutation no JSON writer makes: a duplicate key, a byte order mark, an integer written ``1.0`` or ``1e0``,
  uppercase hex, a no-break space or U+2028 inside a string, a cut; or
- a semantic mutation: a record really signed (by its organisation's key, another's, or an attacker's) of
  any kind, time (years 1 to 9999) and payload, in a log really built and signed (by the log key or not,
  under the pinned origin or not), with any anchor;
read with a trust file or none. Both sides must give the same verdict, fail in the same step and run the
same steps with the same statuses; the Python verifier never raises and never reports VERIFIER_FAULT, and
the page never fails a step for an internal error (nor logs one).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from provenance.crypto.sm3 import sm3_hex
from provenance.domains import kind_roles
from provenance.errors import FormatError
from provenance.records import Envelope, digest_of, sign_envelope
from provenance.types import Digest, OrgId, RecordKind, Subject
from provenance.verification.batch import verify_line
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier
from tests.assets.bundles.generate import _ORG_KEYS, CHAIN_ID, CONTRACT, ORIGIN, _logged, fixture_key
from tests.kit.differential import disagreements, page_outcomes, python_outcome
from tests.kit.webui import BUNDLES, PageProbe
from tests.security.fuzzing import json_paths

VALID = json.loads((BUNDLES / "valid.json").read_text("utf-8"))
KEYS = {org: fixture_key(name) for org, name in _ORG_KEYS.items()}
LOG_KEY = fixture_key("log")
ATTACKER = fixture_key("attacker")
TRUST_FILES = [None, "trust.json", "trust-no-logs.json", "trust-ancient-hospital-key.json"]
ODD_KEYS = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf", "toJSON", "payload", "0"]
ODD_CHARS = ["\u00a0", "\u2028", "\u0085", "\ufeff", "\u0000", "é", "中", "😀", "\\", '"']

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**53 - 1, 2**53, 2**53 + 1, -(2**53), 2**64, 10**21, 10**22])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1.0, 0.0, -0.0, 1e16, 9007199254740992.0, 1e21, 5e-324, 0.1])
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(ODD_CHARS), max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(ODD_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    value: Any = draw(st.sampled_from([1, "x", {}, []]))
    for _ in range(draw(st.sampled_from([1, 198, 199, 200, 201, 250, 254, 255, 256, 300]))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


payloads = json_values | deep()


@st.composite
def json_mutation(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    b = copy.deepcopy(base)
    path = draw(st.sampled_from(json_paths(b)[1:]))
    *parents, last = path
    node: Any = b
    for p in parents:
        node = node[p]
    action = draw(st.sampled_from(["replace", "add", "delete"]))
    if action == "replace":
        node[last] = draw(payloads)
    elif action == "add" and isinstance(node[last], dict):
        node[last][draw(st.sampled_from(ODD_KEYS) | st.text(max_size=6))] = draw(json_values)
    elif isinstance(node, dict):
        del node[last]
    else:
        node.pop(last)
    return json.dumps(b, ensure_ascii=draw(st.booleans())).encode("utf-8")


_KEY_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*":')
_INT_TOKEN = re.compile(rb":(-?\d+)(?=[,}])")
_HEX_STRING = re.compile(rb'"0x([0-9a-f]+)"')
_STRING = re.compile(rb'"(?:[^"\\]|\\.)+"')


@st.composite
def text_mutation(draw: st.DrawFn, line: bytes) -> bytes:
    kind = draw(st.sampled_from(["duplicate", "bom", "float", "exponent", "upper", "char", "cut"]))
    tokens = {
        "duplicate": _KEY_TOKEN,
        "float": _INT_TOKEN,
        "exponent": _INT_TOKEN,
        "upper": _HEX_STRING,
        "char": _STRING,
    }
    if kind == "bom":
        return b"\xef\xbb\xbf" + line
    # Positions are drawn as numbers and reduced modulo what the line offers: SM2 signatures are random,
    # so a line's length may differ between runs of the same example, and draws must not depend on it.
    pick = draw(st.integers(0, 1 << 20))
    if kind == "cut":
        return line[: 1 + pick % (len(line) - 1)].rstrip() or b"{"
    matches = list(tokens[kind].finditer(line))
    if not matches:
        return b"\xef\xbb\xbf" + line
    m = matches[pick % len(matches)]
    if kind == "duplicate":
        value = json.dumps(draw(json_values)).encode()
        return line[: m.start()] + m.group() + value + b"," + line[m.start() :]
    if kind == "float":
        return line[: m.end(1)] + b".0" + line[m.end(1) :]
    if kind == "exponent":
        return line[: m.end(1)] + b"e0" + line[m.end(1) :]
    if kind == "upper":
        return line[: m.start(1)] + m.group(1).upper() + line[m.end(1) :]
    at = m.start() + 1 + draw(st.integers(0, 1 << 20)) % (m.end() - m.start() - 1)
    char = draw(st.sampled_from(["\u00a0", "\u2028", "\u0085", "\ufeff"])).encode("utf-8")
    if line[at - 1 : at] == b"\\":
        at -= 1  # never inside an escape
    return line[:at] + char + line[at:]


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from([1, 99, 1969, 1970, 1999, 2026, 9999]) | st.integers(1, 9999))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    clock = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"
    frac = draw(st.sampled_from(["", ".0", ".123", ".999999", ".000001"]))
    return f"{year:04d}-{month:02d}-{day:02d}T{clock}{frac}Z"


@st.composite
def semantic(draw: st.DrawFn) -> bytes:
    """A record really signed, in a log really built, with choices at every point a verifier checks."""
    org = draw(st.sampled_from(sorted(KEYS)))
    signer = draw(
        st.sampled_from([KEYS[org], KEYS[org], ATTACKER, KEYS[draw(st.sampled_from(sorted(KEYS)))]])
    )
    kind = draw(st.sampled_from([*kind_roles(), "rx.unknown", "audit.note"]))
    payload = draw(payloads)
    try:
        payload_digest = digest_of(payload)
    except FormatError:  # no canonical form: sign the digest of its text, as a forger would
        payload_digest = Digest(sm3_hex(json.dumps(payload).encode()))
    env = Envelope(
        kind=RecordKind(kind),
        subject=Subject(draw(st.sampled_from(["rx:fuzz-1", "dataset:fuzz", "station:f-1", "branch:f"]))),
        org=OrgId(org),
        timestamp=draw(timestamps()),
        nonce=sm3_hex(draw(st.binary(min_size=1, max_size=8)))[:32],
        prev=None,
        payload_digest=payload_digest,
    )
    signed = sign_envelope(env, signer)
    others = [
        (
            sign_envelope(
                Envelope.create(kind="rx.issue", subject=f"rx:o{i}", org="hosp-1", payload=i), KEYS["hosp-1"]
            ),
            i,
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    index = draw(st.integers(0, len(others)))
    records = [*others[:index], (signed, payload), *others[index:]]
    doc = _logged(
        records,
        index,
        signer=draw(st.sampled_from([signer, KEYS[org]])),
        log_key=draw(st.sampled_from([LOG_KEY, LOG_KEY, ATTACKER])),
        origin=draw(st.sampled_from([ORIGIN, ORIGIN, "golden.shancheng.staging/log"])),
        chain_id=draw(st.sampled_from([CHAIN_ID, CHAIN_ID, 1])),
        contract=draw(
            st.sampled_from([CONTRACT, CONTRACT, "0x" + "11" * 20, CONTRACT.upper().replace("0X", "0x")])
        ),
        label="fuzz",
    )
    if draw(st.booleans()):
        doc["payload"] = draw(st.sampled_from([None, payload, draw(payloads)]))
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


@st.composite
def bundle_lines(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["json", "text", "semantic", "semantic+json", "semantic+text"]))
    if how == "json":
        return draw(json_mutation(VALID))
    if how == "text":
        return draw(text_mutation(json.dumps(VALID, ensure_ascii=False).encode("utf-8")))
    line = draw(semantic())
    if how == "semantic+json":
        return draw(json_mutation(json.loads(line)))
    if how == "semantic+text":
        return draw(text_mutation(line))
    return line


@settings(
    # 25 batches of 40 (~30 s); 200 batches (8,000 bundles) ran clean when this test was written. No
    # shrinking: each step would load the page again, and a failure already names the lines that differ.
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(lines=st.lists(bundle_lines(), min_size=40, max_size=40), trust_file=st.sampled_from(TRUST_FILES))
def test_generated_bundles_same_outcome_and_no_crash(
    probe: PageProbe, tmp_path: Path, lines: list[bytes], trust_file: str | None
) -> None:
    lines = [line for line in lines if b"\n" not in line and line.strip()]
    store = TrustStore.load(BUNDLES / trust_file) if trust_file else None
    for line in lines:  # the Python verifier names a step for every input and never faults
        failure = verify_line(Verifier(trust=store), 1, line)
        assert failure is None or failure.code != "VERIFIER_FAULT", failure
    expected = [python_outcome(line, store) for line in lines]
    got = page_outcomes(probe, lines, tmp_path, trust_file=BUNDLES / trust_file if trust_file else None)
    labels = [line[:160].decode("utf-8", "replace") for line in lines]
    assert disagreements(expected, got, labels) == []
    internal = probe.page.locator('.export-result tbody tr[data-failed-reason="internal"]')
    assert internal.count() == 0, "the page failed a step on an internal error"
