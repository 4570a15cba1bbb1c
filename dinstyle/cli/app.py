"""The Typer app, its global options, and the process entry point (signals, exit codes)."""
from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from dinstyle import __version__
from dinstyle.cli import render
from dinstyle.errors import EXIT_USAGE

app = typer.Typer(name="dinstyle", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fast arbitrary style transfer with Dynamic Instance Normalization (MobileNet-DIN).")
export_app = typer.Typer(help="Export the model to other runtimes.", no_args_is_help=True)
app.add_typer(export_app, name="export")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dinstyle {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    traceback: Annotated[bool, typer.Option("--traceback", help="Show full tracebacks on errors (debugging).")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")] = False,
) -> None:
    render.STATE["traceback"] = traceback


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one clean-up; a second SIGTERM cannot break it
    raise render.Terminated()


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = 0
    try:
        app()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    except KeyboardInterrupt as e:
        word, code = render.interrupted(e)
        render.err.print(f"[yellow]{word}[/yellow]")
    try:
        sys.stdout.flush()  # --json to a full disk: the last records fail here, not silently at exit
    except OSError as e:
        render.drop_stdout()
        render.error(f"stdout: cannot write the output ({e.strerror or e})")
        code = code or EXIT_USAGE
    sys.exit(code)
