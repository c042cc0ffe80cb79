"""The ``provenance`` command: keys, digests, SM2, records, verification (typer + rich).

Errors print one readable line and exit non-zero (2 for bad input, 1 for a failed verification), also
for input no check foresaw (``UNEXPECTED_INPUT``, exit 2); ``--verbose`` adds the traceback. Other packages
add command groups through the ``provenance.cli`` entry-point group (``node``, ``devnet``, …) so this
package never imports them.
"""

from __future__ import annotations

import logging
import sys
import traceback
from importlib.metadata import entry_points
from typing import Any

import click
import typer

# Each module adds its commands to ``app``; imported in the order `provenance --help` lists them.
from provenance.cli import keys, verify, receipt, certificate, demo, monitor, orgs, audit, trace  # noqa: F401  # isort: skip
from provenance.cli._app import answered, app, err, shown, state
from provenance.errors import ProvenanceError, VerificationError

__all__ = ["app", "entry", "main"]

# What a command that met input none of its checks foresaw says (a gateway's or chain's malformed answer, a
# malformed certificate PDF): exit 2, bad input, as for the errors the checks name.
UNEXPECTED_INPUT = "UNEXPECTED_INPUT"


class _LogLines(logging.Handler):
    """Libraries' warnings (pypdf's about a malformed PDF quote its names) through the safe console: as
    text, never as the control characters a hostile file put in them (the last-resort handler writes them
    raw)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:  # a log line never ends a command
            self.handleError(record)


def _print_traceback() -> None:
    """``--verbose``'s traceback through the safe console: its last line quotes the error's message, which a
    gateway may have written (with control characters a terminal would act on)."""
    err.print(traceback.format_exc(), markup=False, highlight=False, soft_wrap=True)


def _plugin_groups() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group="provenance.cli")}


def main(argv: list[str] | None = None) -> int:
    """Console entry point: mounts plugin groups, maps project errors to one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    root = logging.getLogger()
    if not root.handlers:  # as the last-resort handler would: warnings and worse, to stderr
        root.addHandler(_LogLines(logging.WARNING))
    plugins = _plugin_groups()
    wanted = [a for a in args if not a.startswith("-")][:1]
    # Import only the group asked for: loading the node or gateway costs time on every other command.
    for name, ep in plugins.items():
        if not wanted or wanted[0] == name:
            try:
                app.add_typer(ep.load(), name=name)
            except ImportError as exc:
                if wanted:  # asked for by name: say why it is missing; a --help listing just omits it
                    err.print(f"[yellow]warning[/yellow]: command group '{name}' unavailable: {exc}")
    try:
        with answered():
            rv = app(args=args, prog_name="provenance", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except VerificationError as exc:
        err.print(f"[red]error[/red] [{shown(exc.code)}] step '{shown(exc.step)}': {shown(exc.message)}")
        if state["verbose"]:
            _print_traceback()
        return 1
    except ProvenanceError as exc:
        err.print(f"[red]error[/red] [{shown(exc.code)}]: {shown(exc.message)}")  # a gateway's code too
        if state["verbose"]:
            _print_traceback()
        return 2
    except (click.exceptions.Exit, typer.Exit) as exc:
        return exc.exit_code
    except (click.exceptions.Abort, typer.Abort):
        err.print("aborted")
        return 130
    except (click.ClickException, typer.TyperException) as exc:
        # Usage errors (an unknown option, a missing argument): typer 0.2x raises its own copy of click's
        # exceptions, which click's classes do not catch; both print the usage line, exit 2.
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(f"[red]error[/red]: {shown(exc)}")
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # an answer or a file no check foresaw: one line, not a traceback
        err.print(
            f"[red]error[/red] [{UNEXPECTED_INPUT}]: the input could not be read: "
            f"{type(exc).__name__}: {shown(exc)}" + ("" if state["verbose"] else " (--verbose for where)")
        )
        if state["verbose"]:
            _print_traceback()
        return 2


def entry() -> None:
    sys.exit(main())
