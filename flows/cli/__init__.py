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

from flows.cli import audit, bench, check, config, deploy, disposition, quarantine, retention, run, runs, web
from flows.cli.common import setup_logging


class _Commands(TyperGroup):
    """The top-level group: a reader that stops reading (`guidang audit verify | head -3`) does not
    change the command's outcome. The rest of the output goes nowhere and the command finishes, so
    its exit code (1 for findings, 0 for none) is the one the shell sees, without click's exit 1
    or Python's "Exception ignored"."""

    def invoke(self, ctx: typer.Context) -> Any:
        guard = _ClosedPipeGuard(sys.stdout)
        sys.stdout = guard  # type: ignore[assignment]  # a stream in all that its writers use
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # meet a closed pipe here, not in the interpreter's final flush
            return result
        except BrokenPipeError:  # written past the guard (a stream taken before it was put in place)
            _silence_stdout()
            raise typer.Exit(0) from None
        finally:
            if sys.stdout is guard:
                sys.stdout = guard.stream


class _ClosedPipeGuard:
    """stdout that meets a closed pipe once and then writes nowhere, instead of raising in the
    middle of a command whose outcome is not yet known."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        _silence_stdout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


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
app.add_typer(runs.app, name="runs")


def entry() -> None:
    """The `guidang` console script and `python -m flows.cli`: the application, its process ended
    as flows/cli/ending.py says once the command has returned."""
    from flows.cli.ending import run_and_exit

    run_and_exit(app)
