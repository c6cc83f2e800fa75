"""`guidang audit ...`: what the archive bureau (档案局/馆) checks of the ledger."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, load_config, open_ledger
from schemas.findings import code_text

app = typer.Typer(help="Audit the ledger and the archive (档案局/馆).", no_args_is_help=True)


@app.command("verify")
def verify(config: ConfigOpt = Path("guidang.yaml"), as_json: JsonOpt = False) -> None:
    """Recompute the event chain: any changed, inserted or deleted event is reported. Exit 1 if any."""
    from ledger import chain

    settings = load_config(config)
    with open_ledger(settings) as ledger, ledger.read() as s:
        count, findings = chain.verify_chain(s)
        head = chain.chain_head(s)
    if as_json:
        echo_json(
            {"events": count, "chain_head": head[1], "ok": not findings, "findings": [f.to_dict() for f in findings]}
        )
    else:
        typer.echo(f"{count} events checked; chain head {head[1]}")
        for f in findings:
            typer.echo(f"  {f}  ({code_text(f.code)})")
        typer.echo("OK: the event chain is intact" if not findings else f"FAILED: {len(findings)} problem(s)")
    if findings:
        raise typer.Exit(1)
