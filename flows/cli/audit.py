"""`guidang audit ...`: what the archive bureau (档案局/馆) checks of the ledger and the archive.

Exit codes as elsewhere: 0 all well, 1 something is wrong (each finding printed, `--json` lists
them all), 2 bad usage or configuration (found before any work).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, fail, load_config, open_ledger
from schemas.findings import GuidangError, code_text

if TYPE_CHECKING:
    from connectors.repositories import Repository
    from schemas.config import Settings

app = typer.Typer(help="Audit the ledger and the archive (档案局/馆).", no_args_is_help=True)


def open_archive(settings: Settings, *, required: bool) -> Repository | None:
    """The archive repository; when it cannot be opened: exit 2 if `required`, else None (reported)."""
    from connectors.repositories import open_repository

    try:
        return open_repository(settings.repository, base_dir=settings.base_dir)
    except GuidangError as exc:
        if required:
            raise fail(f"the archive repository cannot be opened: {exc}", 2) from exc
        return None


@app.command("verify")
def verify(config: ConfigOpt = Path("guidang.yaml"), as_json: JsonOpt = False) -> None:
    """Recompute the event chain, compare every matter row with its last event, and check the ledger
    against every checkpoint in the archive repository. Exit 1 if anything differs."""
    from flows.audit_verify import verify_ledger

    settings = load_config(config)
    repository = open_archive(settings, required=False)
    with open_ledger(settings) as ledger:
        result = verify_ledger(ledger, repository)
    if as_json:
        echo_json(result.to_dict())
    else:
        typer.echo(f"{result.events} events checked; chain head {result.chain_head[1]} (event {result.chain_head[0]})")
        typer.echo(f"{result.rows} matter rows checked; {result.checkpoints} checkpoint(s) in the repository checked")
        for f in result.findings:
            typer.echo(f"  {f}  ({code_text(f.code)})")
        typer.echo("OK: the ledger is intact and agrees with every checkpoint" if result.ok
                   else f"FAILED: {len(result.findings)} problem(s)")
    if not result.ok:
        raise typer.Exit(1)
