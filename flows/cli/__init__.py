"""The `guidang` command: a thin shell over flows/ and the plain stages (STYLE habit 10).

One module per command group, each parsing its options, calling flows/ or the stages and printing
what they return; `common` holds what they share (options, `fail`, settings, dates, the writers).
Every command that reports takes `--json`; exit codes: 0 done, 1 a check or run failed (or, with
--strict, something was quarantined), 2 bad usage or configuration. The groups import only typer
and the small shared types at the top, so `guidang --help` starts without Prefect or the ledger.
"""

from __future__ import annotations

import typer

from flows.cli import audit, check, config, quarantine, retention, run

app = typer.Typer(
    help="guidang 归档: nightly electronic archiving of completed government-service matters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run.run)
app.command("serve")(run.serve)
app.command("demo")(run.demo)
app.command("check")(check.check_command)
app.add_typer(audit.app, name="audit")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(retention.app, name="retention")
app.add_typer(check.export_app, name="export")
app.add_typer(config.app, name="config")
