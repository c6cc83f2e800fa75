"""`guidang retention ...`: the archivists' commands over the retention table (归档范围和保管期限表).

A thin shell over retention/ and night/retention_book (the logic stays testable without the CLI):
every command takes --json,
exits 1 when it finds errors (an invalid table, uncovered catalogue entries, a matter no rule
decides) and 2 on bad usage. The table itself (template … diff) is in `tables`; the table applied to
matters (coverage, explain, due) in `matters`.
"""

from __future__ import annotations

import typer

from flows.cli.retention import matters, tables

app = typer.Typer(
    help="归档范围和保管期限表: template, validate, import, list, show, diff, coverage, explain, due.",
    no_args_is_help=True,
)
app.command("template")(tables.template)
app.command("validate")(tables.validate)
app.command("import")(tables.import_)
app.command("list")(tables.list_)
app.command("show")(tables.show)
app.command("diff")(tables.diff)
app.command("coverage")(matters.coverage_cmd)
app.command("explain")(matters.explain_cmd)
app.command("due")(matters.due)
