"""The `guidang` command: a thin shell over flows/ and the plain stages, which hold the logic.

One module per command group, each parsing its options, calling flows/ or the stages and printing
what they return; `common` holds what they share (options, `fail`, settings, dates, the writers).
Every command that reports takes `--json`; exit codes: 0 done, 1 a check or run failed (or, with
--strict, something was quarantined), 2 bad usage or configuration. The groups import only typer
and the small shared types at the top, so `guidang --help` starts without Prefect or the ledger.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from flows.cli import audit, bench, check, config, deploy, disposition, quarantine, retention, run, web
from flows.cli.common import setup_logging


class _Commands(TyperGroup):
    """The top-level group: a reader that stops reading (`guidang quarantine list | head -1`) ends
    the output quietly with exit 0, instead of click's exit 1 and Python's "Exception ignored"."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # meet a closed pipe here, not in the interpreter's final flush
            return result
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(0) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what is still buffered
    does not meet the closed pipe again (the recipe of Python's signal documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test runner's stream)
        pass


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"guidang {version('guidang')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            typer.echo("guidang (not installed: no package metadata)")
        raise typer.Exit()


app = typer.Typer(
    cls=_Commands,
    help="guidang 归档: nightly electronic archiving of completed government-service matters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """guidang 归档: nightly electronic archiving of completed government-service matters."""
    setup_logging()  # every command's log lines masked on the terminal; `run -v` raises the level


app.command("run")(run.run)
app.command("deploy")(deploy.deploy)
app.command("serve")(deploy.serve)
app.command("demo")(run.demo)
app.command("check")(check.check_command)
app.command("bench")(bench.bench)
app.command("web")(web.web)
app.add_typer(audit.app, name="audit")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(retention.app, name="retention")
app.add_typer(check.export_app, name="export")
app.add_typer(config.app, name="config")
app.add_typer(disposition.app, name="disposition")
