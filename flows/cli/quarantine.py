"""`guidang quarantine ...`: the matters held back with a reason (隔离区), to look at and to retry.

What is shown is masked (identity numbers, credit codes and phone numbers in a finding, a file name
or a resolution are not printed) and its control characters escaped; `show` prints the stored
record of the one entry asked for whole, card number included, as the archivist (档案员) who judges
it must see it, says so in its first line, and masks the rest as `list` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import (
    ConfigOpt,
    JsonOpt,
    echo_json,
    fail,
    load_config,
    masked,
    open_ledger,
    report_run,
)
from schemas.findings import GuidangError, code_text

if TYPE_CHECKING:
    from ledger.models import QuarantineEntry

app = typer.Typer(help="Matters held back with a reason (隔离区): look, and retry.", no_args_is_help=True)


def _entry_dict(e: QuarantineEntry, *, full: bool = False) -> dict[str, Any]:
    """One entry as shown, every text masked; with `full`, the stored record added as it is."""
    d = masked({
        "id": e.id,
        "source": e.source,
        "project_id": e.project_id,
        "codes": e.codes,
        "attempts": e.attempts,
        "created_at": e.created_at.isoformat(),
        "resolved_at": e.resolved_at.isoformat() if e.resolved_at else None,
        "resolution": e.resolution,
        "findings": e.findings,
    })
    if full:
        d["record"] = _escaped(e.record)  # the one entry asked for: whole, card number included
    return d


@app.command("list")
def list_(
    config: ConfigOpt = Path("guidang.yaml"),
    all_: Annotated[bool, typer.Option("--all", help="resolved entries too")] = False,
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open quarantine entries, newest last, with their reason codes."""
    from ledger import queries

    settings = load_config(config)
    with open_ledger(settings) as ledger, ledger.read() as s:
        entries = [_entry_dict(e) for e in queries.quarantine_entries(s, resolved_too=all_, source=source)]
    if as_json:
        echo_json(entries)
        return
    for e in entries:
        state = f"resolved: {e['resolution']}" if e["resolved_at"] else f"attempts {e['attempts']}"
        typer.echo(f"#{e['id']}  {e['source']}/{e['project_id']}  {','.join(e['codes'])}  ({state})")
        for f in e["findings"]:
            typer.echo(f"      {f['code']} {code_text(f['code'])}: {f['message']}")
    typer.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")


@app.command("show")
def show(
    entry: Annotated[int, typer.Argument(help="entry id (from `quarantine list`)")],
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """One entry in full, with the record needed to retry it."""
    from ledger import queries

    settings = load_config(config)
    with open_ledger(settings) as ledger, ledger.read() as s:
        e = queries.quarantine_entry(s, entry)
        if e is None:
            raise fail(f"no quarantine entry {entry}", 1)
        d = _entry_dict(e, full=True)
    if as_json:
        echo_json({"record_shown_whole": True, **d}, mask=False)  # masked by _entry_dict, but the record
    else:
        typer.echo(WHOLE_RECORD)
        typer.echo("\n".join(f"{k}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in d.items()))


WHOLE_RECORD = ("# record: shown whole, personal data unmasked (档案员视图 the archivist's view of one entry); "
                "everything else masked")


def _escaped(data: Any) -> Any:
    """The record's strings with control characters escaped, nothing masked."""
    from schemas.masking import escape_controls

    if isinstance(data, str):
        return escape_controls(data)
    if isinstance(data, dict):
        return {_escaped(k): _escaped(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_escaped(v) for v in data]
    return data


@app.command("retry")
def retry(
    entries: Annotated[list[int] | None, typer.Argument(help="entry ids; all open ones if none")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Fetch each matter afresh and put it through the stages again; fixed ones are archived."""
    from night.quarantine_retry import retry_quarantined

    settings = load_config(config)
    try:
        summary = retry_quarantined(settings, entries or None)
    except GuidangError as exc:
        raise fail(str(exc), 1) from exc
    report_run(summary, as_json, strict=False)
