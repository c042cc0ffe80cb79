"""The `provenance` command as a user runs it: real processes, real files, real OpenSSL."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

OPENSSL = shutil.which("openssl")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provenance", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    r = run("keygen", "--out", str(d / "org.pem"))
    assert r.returncode == 0, r.stderr
    return d


def test_keygen_writes_0600_private_and_public(keys):
    mode = stat.S_IMODE(os.stat(keys / "org.pem").st_mode)
    assert mode == 0o600
    assert (keys / "org.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    r = run("keygen", "--out", str(keys / "org.pem"))
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
def test_keys_readable_by_openssl(keys):
    r = subprocess.run(
        [OPENSSL, "pkey", "-in", str(keys / "org.pem"), "-noout", "-text"], capture_output=True
    )
    assert r.returncode == 0 and b"SM2" in r.stdout


def test_digest_matches_sm3_vector(tmp_path):
    f = tmp_path / "abc.txt"
    f.write_bytes(b"abc")
    r = run("digest", str(f))
    assert r.stdout.strip() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
def test_sm2_sign_verify_and_openssl_interop(keys, tmp_path):
    msg = tmp_path / "msg.bin"
    msg.write_bytes("处方 rx-1 阿莫西林".encode())
    r = run("sm2", "sign", "--key", str(keys / "org.pem"), str(msg))
    assert r.returncode == 0, r.stderr
    sig_b64 = tmp_path / "sig.b64"
    sig_b64.write_text(r.stdout)
    assert (
        run("sm2", "verify", "--pub", str(keys / "org.pub.pem"), "--sig", str(sig_b64), str(msg)).returncode
        == 0
    )
    # OpenSSL verifies our signature (raw DER), with the default distinguishing ID.
    import base64

    der = tmp_path / "sig.der"
    der.write_bytes(base64.b64decode(r.stdout))
    ok = subprocess.run(
        [
            OPENSSL,
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            str(keys / "org.pub.pem"),
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
            str(msg),
            "-sigfile",
            str(der),
        ],
        capture_output=True,
    )
    assert ok.returncode == 0, ok.stderr
    # Altered message: exit 1 with "invalid".
    msg.write_bytes(b"tampered")
    bad = run("sm2", "verify", "--pub", str(keys / "org.pub.pem"), "--sig", str(sig_b64), str(msg))
    assert bad.returncode == 1 and "invalid" in bad.stderr


def test_bad_input_is_one_line_not_a_traceback(tmp_path):
    notpem = tmp_path / "x.pem"
    notpem.write_text("hello")
    for args, code in [
        (("digest", str(tmp_path / "missing")), "FILE_UNREADABLE"),
        (("sm2", "sign", "--key", str(notpem), str(notpem)), "KEY_INVALID"),
        (("verify", "--trust", str(notpem), str(notpem)), "TRUST_INVALID"),
    ]:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert code in r.stderr and "Traceback" not in r.stderr
    # Usage errors: the usage line and exit 2, not the option parser's traceback (the sixteenth attack).
    for args, said in [
        (("verify", "--bogus", "x"), "No such option: --bogus"),
        (("verify",), "Missing"),
        (("trace",), "Missing"),
    ]:
        r = run(*args)
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) <= 8, r.stderr
    # A bundle file that is not JSON is a bundle that fails its first step, as on the /verify page.
    r = run("verify", str(notpem))
    assert r.returncode == 1 and "step 'schema' failed [FORMAT_INVALID]" in r.stderr, r.stderr


def test_unreachable_gateway_or_chain_is_one_line_exit_2(tmp_path):
    """Every command that talks to a gateway or a node says which one did not answer, without a traceback."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    addr = "0x" + "11" * 20
    export = ("orgs", "export", "--rpc", dead, "--registry", addr, "--out", str(tmp_path / "t.json"))
    for args, code in [
        (("trace", "rx:RX1", "--gateway", dead), "GATEWAY_UNREACHABLE"),
        (("export", "--gateway", dead, "--out", str(tmp_path / "x.jsonl")), "GATEWAY_UNREACHABLE"),
        (("audit", "log", "--rpc", dead, "--log-contract", addr, "--gateway", dead), "LEDGER_ERROR"),
        ((*export, "--log-contract", addr, "--log-key-name", "k", "--log-origin", "o"), "LEDGER_ERROR"),
        ((*export, "--gateway", dead), "GATEWAY_UNREACHABLE"),
        (("chain", "verify", "--rpc", dead), "LEDGER_ERROR"),
    ]:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert code in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "t.json").exists()


def test_record_sign_then_check(keys, tmp_path):
    rec = tmp_path / "rec.json"
    rec.write_text(
        json.dumps({"kind": "party.record", "subject": "branch:b1", "payload": {"meeting": "支部党员大会"}})
    )
    r = run(
        "record",
        "sign",
        "--key",
        str(keys / "org.pem"),
        "--org",
        "branch-1",
        str(rec),
        "--out",
        str(tmp_path / "s.json"),
    )
    assert r.returncode == 0, r.stderr
    signed = json.loads((tmp_path / "s.json").read_text())
    assert signed["record"]["org"] == "branch-1" and signed["payload"] == {"meeting": "支部党员大会"}
    assert run("record", "check", str(tmp_path / "s.json")).returncode == 0
    signed["record"]["subject"] = "branch:b2"
    (tmp_path / "t.json").write_text(json.dumps(signed))
    assert run("record", "check", str(tmp_path / "t.json")).returncode == 1
    rec.write_text(json.dumps({"kind": "party.record"}))
    r = run("record", "sign", "--key", str(keys / "org.pem"), "--org", "b", str(rec))
    assert r.returncode == 2 and "lacks subject, payload" in r.stderr


def test_demo_then_verify_bundles(tmp_path):
    r = run("demo", "--dir", str(tmp_path / "demo"), "--records", "5")
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "demo" / "bundles" / "0003.json"
    trust = tmp_path / "demo" / "trust.json"
    ok = run("verify", "--allow-unanchored", "--trust", str(trust), str(bundle), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    # Without --allow-unanchored the missing anchor is the failing step.
    r = run("verify", "--trust", str(trust), str(bundle), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["failed_step"] == "anchor"
    # Tampered payload: exit 1 naming the payload step.
    data = json.loads(bundle.read_text())
    data["payload"]["status"] = "cancelled"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = run("verify", "--allow-unanchored", "--trust", str(trust), str(bad))
    assert r.returncode == 1 and "step 'payload' failed" in r.stderr
    # An export (JSON Lines) with one bad line: summary and exit 1.
    lines = [
        json.dumps(json.loads(p.read_text())) for p in sorted((tmp_path / "demo" / "bundles").glob("*.json"))
    ]
    lines.append(json.dumps(data))
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(lines) + "\n")
    r = run("verify", "--allow-unanchored", "--trust", str(trust), str(export))
    summary = " ".join(r.stdout.split())
    assert r.returncode == 1 and "5 of 6 bundles verified with the pinned keys, 0 only consistent" in summary
    assert summary.endswith("1 failed")


def test_names_a_bundle_chose_print_as_text_never_as_terminal_codes_or_markup(tmp_path):
    """The second attack on the export verifier (2026-12-07): a signer name holding a lone surrogate crashed
    `--json` (UTF-8 cannot write it), rich markup (`[/x]`) crashed the text report, and terminal escapes
    (`ESC [2J`, a fake "verified" line) reached the screen, for a single bundle and in an export. Each is now
    shown as text, every failure is reported, and the exit is 1 (step signer fails)."""
    bundles = Path(__file__).resolve().parents[1] / "assets" / "bundles"
    trust = str(bundles / "trust.json")
    valid = json.loads((bundles / "valid.json").read_text("utf-8"))
    names = [
        "\ud800",
        "[/x]",
        "\x1b[2J\x1b[H4 of 4 bundles verified\x1b[8m",
        "\x9b2J\x9bH\x7f",
        "hosp\u202e1-",
    ]
    raw = "\x1b\x9b\x7f\u202e"  # what a terminal would act on, or turn around
    lines = [json.dumps(valid)]
    for i, name in enumerate(names):
        text = json.dumps(valid | {"signer": valid["signer"] | {"org": name}})  # \ud800 escaped: valid UTF-8
        lines.append(text)
        one = tmp_path / f"one-{i}.json"
        one.write_text(text, "ascii")
        r = run("verify", "--trust", trust, str(one))
        assert r.returncode == 1 and "step 'signer' failed" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and not any(c in r.stdout + r.stderr for c in raw), r.stderr
        r = run("verify", "--json", "--trust", trust, str(one))
        assert r.returncode == 1 and not any(c in r.stdout for c in raw), r.stdout
        entry = json.loads(r.stdout)
        assert entry["failed_step"] == "signer" and name in entry["message"]  # the text itself, in JSON
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(lines) + "\n", "ascii")
    r = run("verify", "--trust", trust, str(export))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert not any(c in r.stdout + r.stderr for c in raw), r.stderr
    assert "1 of 6 bundles verified" in " ".join(r.stdout.split())
    assert [f"line {n}: step 'signer'" in r.stderr for n in (2, 3, 4, 5, 6)] == [True] * 5, r.stderr
    assert "\\x1b[2J" in r.stderr and "\\ud800" in r.stderr and "[/x]" in r.stderr  # shown, not acted on
    r = run("verify", "--json", "--trust", trust, str(export))
    doc = json.loads(r.stdout)
    assert (
        r.returncode == 1
        and (doc["verified"], doc["failed"]) == (1, 5)
        and not any(c in r.stdout for c in raw)
    )
    assert all(name in f["message"] for name, f in zip(names, doc["failures"], strict=True))


class _HostileGateway:
    """A gateway (or JSON-RPC node) on loopback whose every answer a test chooses: a GET's by
    ``answer(path, query) -> (status, headers, body)``, a POST's by ``rpc(request JSON) -> (status, body)``
    (``asked`` counts the POSTs)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qsl, urlsplit

        gateway = self
        self.answer = lambda path, query: (404, {}, b"{}")
        self.rpc: Any = lambda request: (200, b"{}")
        self.asked = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                status, headers, body = gateway.answer(url.path, dict(parse_qsl(url.query)))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                gateway.asked += 1
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, body = gateway.rpc(request)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hostile():
    gateway = _HostileGateway()
    yield gateway
    gateway.server.shutdown()


def test_a_hostile_gateway_gets_one_line_never_terminal_codes_markup_or_a_loop(hostile, tmp_path):
    """The third attack (2026-12-07) on the commands that read a gateway: its error code, a listing's
    timestamp and organisation went to the terminal raw (ESC [2J, U+009B, rich markup, a crash on '[/x]'), a
    malformed page or a body that is not the gzip it says was a traceback, and a cursor that never advanced
    made `export` write for ever. Now: text, one line, a defined exit."""
    bundles = Path(__file__).resolve().parents[1] / "assets" / "bundles"
    fixture = json.loads((bundles / "gateway-fixture.json").read_text("utf-8"))
    trust = str(bundles / "trust.json")
    evil = "\x1b[2J\x1b[H[green]4 of 4 verified[/green]\x9b2J\r[/x]"

    def check(r: subprocess.CompletedProcess[str], code: int, said: str) -> None:
        shown = r.stdout + r.stderr
        assert r.returncode == code and said in shown, (r.returncode, shown)
        assert "Traceback" not in shown and not any(c in shown for c in "\x1b\x9b\r"), shown

    def listing(path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/api/v1/subjects/"):
            items = [i | {"timestamp": evil, "org": evil} for i in fixture["subjects"]["rx:golden-0001"]]
            return 200, {}, json.dumps({"items": items, "next_cursor": None}).encode()
        if path.endswith("/bundle"):
            return 200, {}, json.dumps(fixture["bundles"][path.split("/")[4]]).encode()
        return 404, {}, b'{"error": {"code": "NOT_FOUND", "message": "no"}}'

    hostile.answer = listing
    r = run("trace", "rx:golden-0001", "--gateway", hostile.url, "--trust", trust)
    check(r, 1, "\\x1b[2J")  # each row fails step listing (its org and time are not the bundle's)
    hostile.answer = lambda path, query: (
        400,
        {},
        json.dumps({"error": {"code": evil, "message": evil}}).encode(),
    )
    check(run("trace", "rx:golden-0001", "--gateway", hostile.url, "--trust", trust), 2, "\\x9b2J")
    page = json.loads(
        json.dumps(
            {"items": [fixture["bundles"][next(iter(fixture["bundles"]))]], "next_cursor": 7, "total": 10**9}
        )
    )
    hostile.answer = lambda path, query: (
        200,
        {},
        json.dumps(page).encode(),
    )  # the same cursor, whatever asked
    out = tmp_path / "x.jsonl"
    check(run("export", "--gateway", hostile.url, "--out", str(out)), 1, "LISTING_INVALID")
    assert not out.exists()
    hostile.answer = lambda path, query: (200, {}, b"[]")
    check(run("export", "--gateway", hostile.url, "--out", str(out)), 1, "LISTING_INVALID")
    # New pages for ever, each cursor past the last (the fifth attack: the export filled the disk): an export
    # holds the records the first page counted, no more; a first page that counts none is refused.
    endless = page | {"total": 3}
    hostile.answer = lambda path, query: (
        200,
        {},
        json.dumps(endless | {"next_cursor": int(query.get("after", "0")) + 1}).encode(),
    )
    check(run("export", "--gateway", hostile.url, "--out", str(out)), 0, "wrote 3 bundles")
    assert len(out.read_text("utf-8").splitlines()) == 3
    out.unlink()
    del endless["total"]
    check(run("export", "--gateway", hostile.url, "--out", str(out)), 1, "LISTING_INVALID")
    assert not out.exists()
    # A compressed answer (not even the gzip it says; a small one can decode to gigabytes): the client asks
    # for none and refuses it, one line, exit 2.
    hostile.answer = lambda path, query: (200, {"Content-Encoding": "gzip"}, b"not gzip at all")
    for args in (("export", "--out", str(out)), ("trace", "rx:golden-0001", "--trust", trust)):
        check(run(*args, "--gateway", hostile.url), 2, "ANSWER_ENCODED")


def _pdf_with_a_name(raw: bytes) -> bytes:
    """A minimal PDF whose catalog and page name a key twice, named ``raw`` (pypdf warns, quoting it)."""
    name = b"/" + b"".join(bytes([c]) if chr(c).isalnum() else b"#%02X" % c for c in raw)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R " + name + b" 1 " + name + b" 2 >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] " + name + b" 1 " + name + b" 2 >>",
    ]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_the_fourth_attacks_inputs_print_as_text(tmp_path):
    """The fourth attack (2026-12-07): pypdf's warnings about a malformed certificate quoted its names with
    their control characters (Python's last-resort log handler writes them raw); ':white_check_mark:' in a
    name drew a ✅; a newline in a value forged a line below it; NaN from a gateway's error body made
    `--json` output that is not JSON; `audit batches` paged for ever on a cursor that did not advance."""
    from provenance.cli._app import bundle_page_items, json_text, shown
    from provenance.errors import ListingInvalid

    pdf = tmp_path / "esc.pdf"
    pdf.write_bytes(_pdf_with_a_name(b"X\x1b[2J\x1b[31mFAKE verified\x1b[0m\r\xc2\x9b"))
    r = run("verify", str(pdf))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert "\\x1b[2J" in r.stderr and not any(c in r.stdout + r.stderr for c in "\x1b\x9b\r"), r.stderr
    assert shown(":white_check_mark: ok\nverified") == ":white_check_mark: ok\\nverified"
    assert json.loads(json_text({"message": float("nan"), "n": [float("inf")]})) == {
        "message": "nan",
        "n": ["inf"],
    }
    for page, after in [
        ({"items": [{}], "next_cursor": 1}, 1),
        ({"items": [], "next_cursor": 2}, 1),
        ([], 0),
    ]:
        with pytest.raises(ListingInvalid):
            bundle_page_items(page, after)
    assert bundle_page_items({"items": [{}], "next_cursor": 9}, 1) == ([{}], 9)
    assert bundle_page_items({"items": [], "next_cursor": None}, 1) == ([], None)


def _endless_gateway(mode: str) -> tuple[Any, str]:
    """A server on loopback whose every answer has no end: 64 KiB chunks ("endless"), or a byte every 0.2 s
    ("trickle", each inside any read time-out); or whose answer never gets past its head, each piece again
    inside any read time-out (the fifth attack): header lines ("head"), ``100 Continue`` answers
    ("continue"), a chunk's extension ("chunk-ext"), or nothing at all ("silent"); (the server, its URL)."""
    import socketserver
    import threading
    import time

    heads = {
        "endless": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", b"[" * 65536),
        "trickle": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", b" "),
        "head": (b"HTTP/1.1 200 OK\r\n", b"X-A: b\r\n"),
        "continue": (b"", b"HTTP/1.1 100 Continue\r\n\r\n"),
        "chunk-ext": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a=", b"b"),
        "silent": (b"", b""),
    }
    head, piece = heads[mode]

    class Endless(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            self.request.sendall(head)
            try:
                while True:
                    self.request.sendall(piece)
                    if mode != "endless":
                        time.sleep(0.2)
            except OSError:
                pass  # the client hung up: the bound held

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("mode", ["endless", "trickle", "head", "continue", "chunk-ext", "silent"])
def test_an_answer_without_end_is_cut_at_its_bound(monkeypatch, capsys, tmp_path, mode):
    """The fourth attack: a gateway that streams an answer without end (or a byte at a time, each inside the
    read time-out) kept `export`, `trace` and the rest reading and growing until interrupted; the fifth: one
    that never finishes the head of its answer did too, as the time bound counted the body alone. An answer
    is read up to MAX_ANSWER_BYTES, whole (head, framing and body) within ANSWER_SECONDS (made small here),
    else one line and exit 2."""
    import time

    from provenance.cli import main as cli
    from provenance.client import transport

    server, url = _endless_gateway(mode)
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 1 << 20)
    monkeypatch.setattr(transport, "ANSWER_SECONDS", 1.5)
    try:
        for args in (["export", "--out", str(tmp_path / "x.jsonl")], ["trace", "rx:golden-0001"]):
            started = time.monotonic()
            assert cli([*args, "--gateway", url]) == 2
            said = capsys.readouterr().err
            code = "ANSWER_TOO_LARGE" if mode == "endless" else "ANSWER_TOO_SLOW"
            assert code in said and "Traceback" not in said, said
            assert time.monotonic() - started < 30
    finally:
        server.shutdown()


@pytest.mark.parametrize("mode", ["endless", "head", "closed"])
def test_a_nodes_answer_is_read_within_the_same_bounds(monkeypatch, capsys, tmp_path, mode):
    """web3's provider read a node's answer until it ended (each read bounded, not the answer): a chain
    answering without end or never finishing its head kept `orgs export` (`audit`, `verify --rpc`) reading.
    The SDK's chain reads go through the same bounded transport; a node that does not answer is still a chain
    that cannot be reached (exit 2), never a gateway."""
    import socket

    from provenance.cli import main as cli
    from provenance.client import transport

    if mode == "closed":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url, server = f"http://127.0.0.1:{s.getsockname()[1]}", None
    else:
        server, url = _endless_gateway(mode)
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 1 << 20)
    monkeypatch.setattr(transport, "ANSWER_SECONDS", 1.5)
    args = [
        "orgs",
        "export",
        "--rpc",
        url,
        "--registry",
        "0x" + "11" * 20,
        "--log-contract",
        "0x" + "22" * 20,
    ]
    args += ["--log-key-name", "k", "--log-origin", "o", "--out", str(tmp_path / "trust.json")]
    try:
        assert cli(args) == 2
        said = capsys.readouterr().err
        code = {"endless": "ANSWER_TOO_LARGE", "head": "ANSWER_TOO_SLOW", "closed": "cannot reach the chain"}
        assert code[mode] in said and "Traceback" not in said and "gateway" not in said, said
        assert not (tmp_path / "trust.json").exists()
    finally:
        if server is not None:
            server.shutdown()


@pytest.mark.parametrize("mode", ["endless", "head"])
def test_the_async_client_reads_an_answer_within_its_bound(mode: str) -> None:
    """The SDK's async client has the same bounds: a gateway streaming without end, or never finishing the
    head of its answer, is cut, one error."""
    import asyncio

    from provenance.client import AsyncClient
    from provenance.client.transport import AnswerTooLarge, AnswerTooSlow, AsyncBoundedTransport

    server, url = _endless_gateway(mode)

    async def fetch() -> None:
        transport = AsyncBoundedTransport(max_bytes=1 << 20, seconds=1.5)
        client = AsyncClient(base_url=url, transport=transport)
        try:
            with pytest.raises(AnswerTooLarge if mode == "endless" else AnswerTooSlow):
                await client._http.get("/api/v1/orgs", timeout=30)
        finally:
            await client.aclose()

    try:
        asyncio.run(fetch())
        assert isinstance(AsyncClient(base_url=url)._http._transport, AsyncBoundedTransport)  # the default
    finally:
        server.shutdown()


def test_verbose_tracebacks_print_a_gateways_words_as_text(hostile):
    """The fifth attack: `--verbose` printed the traceback raw, and its last line quotes the error's message,
    which the gateway wrote (ESC, CR, a one-byte CSI). It goes through the safe console now."""
    trust = str(Path(__file__).resolve().parents[1] / "assets" / "bundles" / "trust.json")
    body = {"error": {"code": "X\x1b[2J", "message": "m\x1b[31mRED\r\x9b2Jfake 4 of 4 verified"}}
    hostile.answer = lambda path, query: (400, {}, json.dumps(body).encode())
    r = run("--verbose", "trace", "rx:golden-0001", "--trust", trust, "--gateway", hostile.url)
    assert r.returncode == 2 and "Traceback" in r.stderr and "\\x1b[31mRED" in r.stderr, r.stderr
    assert not any(c in r.stdout + r.stderr for c in "\x1b\x9b\r"), r.stderr


def test_a_pdf_pypdf_cannot_read_is_an_invalid_certificate():
    """A certificate PDF mutated so that pypdf fails inside its own reader (an embedded file's stream a
    dictionary: the third attack's crash-1.pdf, an AttributeError) ended `verify` with a traceback, then with
    `UNEXPECTED_INPUT`; it is `CERTIFICATE_INVALID` now, naming what pypdf said, exit 2."""
    pdf = Path(__file__).resolve().parents[1] / "assets" / "certificates" / "malformed-embedded-file.pdf"
    r = run("verify", str(pdf))
    assert r.returncode == 2 and "[CERTIFICATE_INVALID]" in r.stderr and "AttributeError" in r.stderr, (
        r.stderr
    )
    assert "Traceback" not in r.stderr


def test_input_no_check_foresaw_is_one_line_unexpected_input(monkeypatch, capsys, tmp_path):
    """What no check foresaw (here the certificate reader failing in a way none of its checks names) ends the
    command with one line naming the exception, `UNEXPECTED_INPUT`, exit 2; `--verbose` adds the traceback."""
    from provenance import certificate_check
    from provenance.cli import main as cli

    def unforeseen(pdf: bytes) -> None:
        raise LookupError("\x1b[2Jsomething no check foresaw")

    monkeypatch.setattr(certificate_check, "read_certificate", unforeseen)
    pdf = tmp_path / "c.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    assert cli(["verify", str(pdf)]) == 2
    said = capsys.readouterr().err
    assert "[UNEXPECTED_INPUT]" in said and "LookupError" in said and "Traceback" not in said, said
    assert "\x1b" not in said and "\\x1b[2J" in said, said
    assert cli(["--verbose", "verify", str(pdf)]) == 2
    said = capsys.readouterr().err
    assert "[UNEXPECTED_INPUT]" in said and "Traceback" in said and "\x1b" not in said, said


def test_a_hostile_node_never_passes_chain_verify(hostile, tmp_path):
    """The sixth attack on `chain verify` (a pinned validator key): a node answering every batch of blocks
    with `[]` was "chain valid: 1000 blocks" having checked none; a head of 4,000 hex digits crashed rich's
    progress bar with a traceback and looped; a node failing each call slowly was asked five times a call
    (web3's retries). Now: a batch needs one answer to each request, a head is a block number, one call is
    one request, and each is one line, exit 2, never "chain valid"."""
    from provenance.crypto import SM2PrivateKey

    pub = tmp_path / "validator.pub.pem"
    pub.write_bytes(SM2PrivateKey.generate().public_key().to_pem())
    node = hostile

    def single(result: str, batch: Any) -> Any:
        def answer(request: Any) -> tuple[int, bytes]:
            if isinstance(request, list):  # the blocks' batch
                return 200, json.dumps(batch(request)).encode()
            value = {"eth_blockNumber": result, "eth_chainId": "0x1"}.get(request["method"], "0x0")
            return 200, json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": value}).encode()

        return answer

    cases = [
        ("0x3e7", lambda requests: [], "with 0 answers, not one to each"),
        ("0x3e7", lambda requests: [{"jsonrpc": "2.0", "id": 1, "result": None}] * len(requests), "answers"),
        ("0x" + "f" * 4000, lambda requests: [], "expected a quantity"),
        (hex(1 << 63), lambda requests: [], "past any chain's"),
    ]
    for head, batch, said in cases:
        node.rpc = single(head, batch)
        r = run("chain", "verify", "--rpc", node.url, "--validator-pub", str(pub))
        shown = " ".join((r.stdout + r.stderr).split())
        assert r.returncode == 2 and said in shown, (head[:20], shown)
        assert "chain valid" not in shown and "Traceback" not in shown, shown
    node.rpc, node.asked = (lambda request: (500, b"{}")), 0
    r = run("chain", "verify", "--rpc", node.url, "--validator-pub", str(pub))
    assert r.returncode == 2 and "LEDGER_ERROR" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert node.asked == 1  # one call, one request: no retries that multiply the answer's bound


def test_audit_log_stops_at_an_answer_out_of_bounds():
    """The sixth attack on `audit log`: a gateway that never finished a consistency proof cost the whole
    bound once per anchored link (83 h for 1,000 anchors), each link "no proof". An answer out of bounds is
    the gateway's fault, not a link's: the audit stops there."""
    from provenance.audit import check_links
    from provenance.chain.events import AnchoredCheckpoint
    from provenance.client.transport import AnswerTooSlow
    from provenance.errors import NotFound

    anchors = [AnchoredCheckpoint(n, n, bytes([n]) * 32, n, n) for n in (1, 2, 3)]
    asked: list[tuple[int, int]] = []

    def slow(first: int, second: int) -> list[bytes]:
        asked.append((first, second))
        raise AnswerTooSlow("the answer did not arrive whole in time")

    with pytest.raises(AnswerTooSlow):
        check_links(anchors, slow)
    assert asked == [(1, 2)]

    def missing(first: int, second: int) -> list[bytes]:
        raise NotFound("no such proof")

    results = check_links(anchors, missing)  # a proof the gateway does not have is a finding per link
    assert [r.ok for r in results] == [False, False] and "no proof" in results[0].reason


def test_an_export_reads_pages_it_can_hold(hostile, monkeypatch, capsys, tmp_path):
    """The sixth attack on `export`: the first page's count is the gateway's word (10**15 with junk items
    wrote 36 MB/s), and an answer of 256 MiB parsed to ~8 GB. Now an item must be a JSON object, the user
    may bound the export (`--max-bundles`), an answer is at most 64 MiB, and a page too large for it is
    asked again smaller (bundles with payloads of megabytes), down to one bundle."""
    from provenance.cli import main as cli
    from provenance.client import transport

    bundles = Path(__file__).resolve().parents[1] / "assets" / "bundles"
    fixture = json.loads((bundles / "gateway-fixture.json").read_text("utf-8"))
    bundle = fixture["bundles"][next(iter(fixture["bundles"]))]
    padding = "x" * 40_000  # ~40 kB a bundle: a page of more than 25 is over the 1 MiB bound set below
    asked: list[int] = []

    def pages(path: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        limit, after = int(query["limit"]), int(query["after"])
        asked.append(limit)
        items = [bundle | {"pad": padding}] * limit
        return 200, {}, json.dumps({"items": items, "next_cursor": after + limit, "total": 60}).encode()

    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 1 << 20)
    hostile.answer = pages
    out = tmp_path / "x.jsonl"
    assert cli(["export", "--gateway", hostile.url, "--out", str(out)]) == 0
    assert (
        len(out.read_text("utf-8").splitlines()) == 60
        and asked[:2] == [100, 50]
        and asked[-1] == asked[-2] < 50
    ), asked
    assert cli(["export", "--gateway", hostile.url, "--out", str(out), "--max-bundles", "7"]) == 0
    assert len(out.read_text("utf-8").splitlines()) == 7
    hostile.answer = lambda path, query: (
        200,
        {},
        json.dumps({"items": [bundle, "not a bundle"], "next_cursor": None, "total": 2}).encode(),
    )
    out.unlink()
    capsys.readouterr()
    assert cli(["export", "--gateway", hostile.url, "--out", str(out)]) == 1
    assert "LISTING_INVALID" in capsys.readouterr().err and not out.exists()
    # The seventh attack: a count of 10**400 crashed the progress bar's thread (a raw traceback).
    hostile.answer = lambda path, query: (
        200,
        {},
        json.dumps({"items": [bundle], "next_cursor": int(query["after"]) + 1, "total": 10**400}).encode(),
    )
    assert cli(["export", "--gateway", hostile.url, "--out", str(out)]) == 1
    said = capsys.readouterr().err
    assert "LISTING_INVALID" in said and "Traceback" not in said and not out.exists(), said


def test_an_events_logs_too_many_for_one_answer_are_read_in_spans():
    """A node's answer is bounded like a gateway's (64 MiB since the sixth attack); an event's logs from
    genesis are one `eth_getLogs` while they fit, else the span is halved until each answer does, oldest
    first, every log once; a single block whose logs do not fit is the node's ANSWER_TOO_LARGE."""
    from types import SimpleNamespace

    from provenance.chain.events import MAX_LOG_ANSWERS, all_logs
    from provenance.client.transport import AnswerTooLarge
    from provenance.errors import LedgerError

    logs = [{"blockNumber": n, "logIndex": k} for n in range(0, 1000, 7) for k in range(3)]
    asked: list[tuple[int, int]] = []

    def get_logs(*, from_block: int, to_block: int) -> list[dict[str, int]]:
        asked.append((from_block, to_block))
        found = [lg for lg in logs if from_block <= lg["blockNumber"] <= to_block]
        if len(found) > 40:
            raise AnswerTooLarge("larger than the bound")
        return found

    chain = SimpleNamespace(eth=SimpleNamespace(block_number=999))
    event = SimpleNamespace(w3=chain, get_logs=get_logs, event_name="BatchAnchored")
    assert all_logs(event) == logs and asked[0] == (0, 999) and len(asked) < 64
    logs[:] = [{"blockNumber": 5, "logIndex": k} for k in range(50)]  # one block over the bound
    with pytest.raises(AnswerTooLarge):
        all_logs(event)
    # The seventh attack: every span of more than one block "too large" made it ask block by block
    # (2 x head answers); a log of blocks not asked for was taken.
    chain.eth.block_number, asked[:] = 10**6, []
    logs[:] = [{"blockNumber": n, "logIndex": 0} for n in range(0, 10**6, 10)]
    with pytest.raises(LedgerError, match="fit no 1024 answers"):
        all_logs(event)
    assert len(asked) == MAX_LOG_ANSWERS
    event.get_logs = lambda from_block, to_block: [{"blockNumber": to_block + 1, "logIndex": 0}]
    with pytest.raises(LedgerError, match="with others"):
        all_logs(event)


@pytest.mark.parametrize("give_up", [True, False])
def test_anchor_checks_stop_asking_after_one_answer_out_of_bounds(monkeypatch, give_up):
    """`trace --rpc` and `audit workflow` check one anchor a bundle: a node that never finishes an answer made
    each of them cost the whole bound (hours for a subject's history). The CLI's checker gives up after the
    first such answer: that anchor and every later one fail (ANCHOR_INVALID, saying why), the later ones at
    once; the SDK's default checker asks again each time."""
    import time

    from provenance.chain.anchor import ChainAnchorChecker
    from provenance.client import transport
    from provenance.errors import AnchorInvalid
    from provenance.log.bundle import Anchor
    from provenance.log.checkpoint import Checkpoint

    server, url = _endless_gateway("head")
    monkeypatch.setattr(transport, "ANSWER_SECONDS", 1.0)
    checker = ChainAnchorChecker.from_rpc(url, chain_id=31337, give_up_after_bound=give_up)
    root = b"\x55" * 32
    anchor = Anchor(
        chain_id=31337,
        contract="0x" + "22" * 20,
        tx_hash="0x" + "33" * 32,
        block_number=7,
        block_hash="0x" + "44" * 32,
        tree_size=5,
        root=root,
    )
    cp = Checkpoint(origin="test/log", size=5, root=root)
    try:
        took = []
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(AnchorInvalid) as info:
                checker.check(anchor, cp)
            took.append(time.monotonic() - started)
            assert "did not arrive whole in time" in info.value.message, info.value.message
        assert took[0] >= 0.9
        if give_up:
            assert max(took[1:]) < 0.1 and "not asked again" in info.value.message
        else:
            assert min(took[1:]) >= 0.9
    finally:
        server.shutdown()
