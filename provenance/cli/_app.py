"""The ``provenance`` Typer app, its consoles and the helpers the command modules share."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.text import Text

from provenance.errors import FormatError, LedgerError, ListingInvalid
from provenance.files import read_text
from provenance.records import load_json
from provenance.verification.trust import TrustStore


def cli_app(help: str, **kw: Any) -> typer.Typer:
    """A command-line app of the project (``provenance``, ``python -m devnet``): help when called bare, no
    shell-completion options, and no rich traceback (a project error is one line; ``--verbose`` for more)."""
    return typer.Typer(
        help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, **kw
    )


app = cli_app(
    "Shancheng Provenance: 国密 (SM2/SM3) provenance records, proofs and verification.", name="provenance"
)

# What a terminal would act on rather than show (C0 but tab and newline, DEL, C1: ESC [2J clears the screen,
# a bare CR overwrites the line, U+009B is a one-byte CSI), lone surrogates (UTF-8 cannot write them), and
# the invisible characters that make one name read as another: bidi controls (U+202E turns text around),
# zero-width characters, the word joiners and U+FEFF.
_INVISIBLE = (
    "\xad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0"
    "\U000e0000-\U000e007f"
)
_UNSHOWABLE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_INVISIBLE}]")
# The same in JSON text, where C0 is escaped already (json.dumps) and the rest must be.
_JSON_UNSHOWABLE = re.compile(f"[\x7f-\x9f\ud800-\udfff{_INVISIBLE}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _as_escapes(text: str) -> str:
    return _UNSHOWABLE.sub(lambda m: ascii(m.group())[1:-1], text)


class SafeConsole(Console):
    """A console that never sends a terminal what a bundle, gateway or chain put in a string: every string it
    renders (messages, table cells) has its control characters and lone surrogates written as escapes
    (``\\x1b``), and markup it cannot parse (an attacker's ``[/x]``) is shown as text instead of raising.
    Markup inside such strings should still be escaped where they are interpolated (``shown``): a well-formed
    ``[green]`` would otherwise colour them."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("emoji", False)  # ":white_check_mark:" in a name is text, not a fake ✅
        super().__init__(**kw)

    def render_str(self, text: str, **kw: Any) -> Text:
        text = _as_escapes(text)
        try:
            return super().render_str(text, **kw)
        except MarkupError:
            return super().render_str(text, **{**kw, "markup": False})


out = SafeConsole()
err = SafeConsole(stderr=True)
state = {"verbose": False}


def shown(value: object) -> str:
    """Text a bundle, a gateway or a chain supplied, made safe to print in a rich message: characters a
    terminal would act on as escapes (``\\x1b``, ``\\ud800``), rich's markup (``[/x]``) as literal text. A
    trailing backslash is shown as ``\\\\`` so that it cannot escape the markup that follows it."""
    text = _as_escapes(str(value)).replace("\n", "\\n")  # one value, one line: no forged line below it
    if text.endswith("\\"):
        text += "\\"
    return escape(text)


MAX_COUNT = (1 << 53) - 1  # a count every JSON reader holds (10**400 crashed the progress bar)
PAGE = 100  # bundles a page asks for: ~10 MB with 100 kB payloads, well inside an answer's bound


def bundle_page_items(doc: Any, after: int) -> tuple[list[Any], int | None]:
    """The items of one page of ``GET /api/v1/bundles`` and the cursor of the next (``None``: the last page),
    or ``LISTING_INVALID``: a page that is not an object with a list of items, or a cursor that does not
    advance past ``after`` (a page with none, or an empty page that says more follow) would page for ever."""
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ListingInvalid("the gateway's bundle page is not an object with a list of items")
    cursor = doc.get("next_cursor")
    if not cursor:
        return items, None
    if type(cursor) is not int or cursor <= after or not items:
        raise ListingInvalid(
            f"the gateway's next cursor {cursor!r:.40} does not advance past {after}",
            details={"after": after},
        )
    return items, cursor


def bundle_pages(
    http: httpx.Client, params: dict[str, Any], *, most: int | None = None
) -> Iterator[tuple[list[Any], int]]:
    """The pages of ``GET /api/v1/bundles`` under ``params``: (its items, the number the pages give in all),
    through :func:`bundle_page_items`' guard. At most the ``total`` the first page counts (and ``most``):
    the records checkpointed after the first page go into the next export, and a gateway offering pages for
    ever (the fifth attack: an export filled the disk) is cut there; a first page without its count, or an
    item that is not a JSON object, is ``LISTING_INVALID``. Pages of ``PAGE`` bundles, fewer when one is
    larger than an answer may be (bundles with payloads of megabytes), down to one."""
    from provenance.client.transport import AnswerTooLarge

    after, total, given, limit = 0, -1, 0, PAGE
    while True:
        try:
            resp = http.get("/api/v1/bundles", params=params | {"after": after, "limit": limit})
        except AnswerTooLarge:
            if limit == 1:
                raise
            limit //= 2
            continue
        if resp.status_code != 200:
            raise FormatError(f"gateway answered {resp.status_code}: {resp.text[:200]}")
        doc = load_json(resp.content, what="bundle page")
        items, cursor = bundle_page_items(doc, after)
        if total < 0:
            count = doc.get("total") if isinstance(doc, dict) else None
            if type(count) is not int or not 0 <= count <= MAX_COUNT:
                what = "a number past 2**53-1" if type(count) is int else type(count).__name__
                raise ListingInvalid(f"the gateway's first bundle page counts its records as {what}")
            total = count if most is None else min(count, most)
        items = items[: total - given]
        if not all(isinstance(item, dict) for item in items):
            raise ListingInvalid("the gateway's bundle page lists an item that is not a JSON object")
        given += len(items)
        yield items, total
        if cursor is None or given >= total:
            return
        after = cursor


def json_line(doc: Any) -> str:
    """``doc`` as one compact JSON line, as `provenance export` writes it: a lone surrogate (UTF-8 cannot
    write it) escaped, everything else as ``json.dumps(..., ensure_ascii=False)`` writes it."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_text(doc: Any, *, indent: int | None = 2) -> str:
    """``doc`` as JSON for ``--json`` output: non-ASCII as is, but DEL, C1 controls, lone surrogates and the
    invisible characters of ``shown`` (which a bundle's JSON may carry; UTF-8 cannot write a surrogate, a
    terminal acts on C1) escaped as JSON escapes them: the output always prints, never drives a terminal, and
    reads back the same strings."""
    try:
        text = json.dumps(doc, ensure_ascii=False, indent=indent, allow_nan=False)
    except (
        ValueError
    ):  # NaN or Infinity a lenient reader took from a gateway's answer: JSON has no such number
        text = json.dumps(_finite(doc), ensure_ascii=False, indent=indent, allow_nan=False)
    return _JSON_UNSHOWABLE.sub(_json_escape, text)


def _json_escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c > 0xFFFF:  # a tag character: its UTF-16 pair, as JSON writes it
        c -= 0x10000
        return f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04x}"
    return f"\\u{c:04x}"


def _finite(value: Any) -> Any:
    """``value`` with each non-finite float written as its name (``"nan"``), so that it is JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# Options several commands take, declared once so that each reads the same in every command's help.
JsonOutput = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ChainRpc = Annotated[str, typer.Option("--rpc", help="Chain JSON-RPC URL.")]
Gateway = Annotated[str, typer.Option("--gateway", help="Gateway URL.")]
DEFAULT_GATEWAY = "http://127.0.0.1:8000"
BundleGateway = Annotated[str, typer.Option("--gateway", help="Gateway URL serving evidence bundles.")]
ReaderToken = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="API token of the reader: only what it may read is traced or listed (auditors and regulators "
        "read every record).",
    ),
]
GatewayTrust = Annotated[
    Path | None, typer.Option("--trust", help="Pinned keys (default: the gateway's /api/v1/orgs).")
]
NetworkManifest = Annotated[Path, typer.Option("--manifest", help="Network manifest naming the contracts.")]
DEFAULT_MANIFEST = Path(".devnet/manifest.json")


def command_group(name: str, help: str) -> typer.Typer:
    """A group of subcommands, ``provenance NAME COMMAND``."""
    group = typer.Typer(help=help)
    app.add_typer(group, name=name)
    return group


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        from provenance.crypto import backend_report

        out.print(f"provenance {version('shancheng-provenance')}\nSM2 backends (* in use):", highlight=False)
        out.print(backend_report(), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Versions and the SM2 backend in use."
        ),
    ] = False,
) -> None:
    state["verbose"] = verbose


@contextmanager
def answered(*, gateway: str | None = None, rpc: str | None = None) -> Iterator[None]:
    """A gateway or node that does not answer at all is bad input (one line, exit 2), not a traceback.

    Around every command (``main``); commands that know the URLs they talk to name them.
    """
    from provenance.client import GatewayUnreachable

    try:
        yield
    except httpx.TransportError as exc:
        if gateway is None:
            try:
                gateway = str(exc.request.url)
            except RuntimeError:
                gateway = "?"
        raise GatewayUnreachable(
            f"cannot reach the gateway at {gateway}: {exc or type(exc).__name__}"
        ) from exc
    except Exception as exc:
        requests = sys.modules.get("requests")  # loaded with web3; not imported just to compare types
        if requests is None or not isinstance(exc, requests.ConnectionError | requests.Timeout):
            raise
        at = f" at {rpc}" if rpc else ""
        raise LedgerError(f"cannot reach the chain{at}: no answer ({type(exc).__name__})") from exc


@contextmanager
def reaching(*, rpc: str, gateway: str | None = None) -> Iterator[None]:
    """:func:`answered` naming both ends, and any other failure of a chain read as a LEDGER_ERROR."""
    from web3.exceptions import Web3Exception

    try:
        with answered(gateway=gateway, rpc=rpc):
            yield
    except (Web3Exception, OSError) as exc:
        raise LedgerError(f"cannot read the chain at {rpc}: {exc}") from exc


def token(token_file: Path | None) -> str | None:
    return read_text(token_file, what="token file").strip() if token_file else None


def required_token(token_file: Path) -> str:
    """The API token in ``token_file``, which a command cannot run without."""
    api_token = token(token_file)
    if not api_token:
        raise FormatError(f"token file is empty: {token_file}")
    return api_token


def gateway_trust(gateway: str) -> TrustStore:
    from provenance.client.transport import BoundedTransport

    with httpx.Client(timeout=30, transport=BoundedTransport()) as http:
        resp = http.get(gateway.rstrip("/") + "/api/v1/orgs")
    if resp.status_code != 200:
        raise FormatError(f"gateway answered {resp.status_code} for /api/v1/orgs")
    return TrustStore.from_dict(load_json(resp.content, what="/api/v1/orgs"))
