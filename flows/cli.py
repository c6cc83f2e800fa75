"""The `guidang` command: a thin shell over flows/ and the plain stages (STYLE habit 10).

Every command that reports takes `--json`; exit codes: 0 done, 1 a check or run failed (or, with
--strict, something was quarantined), 2 bad usage or configuration.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.check_cli import check_command, export_app
from schemas.config import Settings, load_settings
from schemas.findings import GuidangError, code_text

app = typer.Typer(
    help="guidang 归档: nightly electronic archiving of completed government-service matters.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="guidang.yaml", envvar="GUIDANG_CONFIG")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


class Orchestrator(StrEnum):
    prefect = "prefect"
    local = "local"


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"guidang: {message}", err=True)
    return typer.Exit(code)


def _settings(config: Path) -> Settings:
    try:
        return load_settings(config)
    except GuidangError as exc:
        raise _fail(str(exc)) from exc


def _parse_dt(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = (
            datetime.fromisoformat(value)
            if "T" in value or " " in value
            else datetime.combine(date.fromisoformat(value), datetime.min.time())
        )
    except ValueError as exc:
        raise _fail(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an ISO datetime") from exc
    if dt.tzinfo is None:
        from zoneinfo import ZoneInfo

        dt = dt.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return dt


def execute_night(
    config_path: Path,
    *,
    sources: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    orchestrator: Orchestrator,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Run one night with Prefect (the deployment's code path) or with plain threads."""
    if orchestrator is Orchestrator.local:
        from flows.pipeline import run_nightly

        return run_nightly(
            _settings(config_path), sources=sources, since=since, until=until, dry_run=dry_run, now=as_of
        )
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "guidang")
    from flows.nightly import RunFailed, nightly_transfer

    _settings(config_path)  # report configuration errors before Prefect starts
    state = nightly_transfer(
        config=str(config_path),
        sources=sources,
        since=since,
        until=until,
        dry_run=dry_run,
        as_of=as_of,
        return_state=True,
    )
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunFailed):
        return result.summary
    if isinstance(result, BaseException):
        raise result
    return result


def _report(summary: dict[str, Any], as_json: bool, strict: bool) -> None:
    from flows.report import summary_text

    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else summary_text(summary))
    if summary.get("status") != "completed":
        raise typer.Exit(1)
    if strict and summary["totals"]["quarantined"]:
        raise typer.Exit(1)


@app.command()
def run(
    config: ConfigOpt = Path("guidang.yaml"),
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="only this source (repeatable)")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="backfill from this date/time")] = None,
    to: Annotated[str | None, typer.Option("--to", help="backfill up to this date/time")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="collect, appraise and check; write nothing")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 if any matter was quarantined")] = False,
    orchestrator: Annotated[
        Orchestrator, typer.Option(help="prefect (default) or local threads")
    ] = Orchestrator.prefect,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="run as if it were this time (reproducible re-runs)")
    ] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the nightly transfer once now (or backfill --from/--to without moving the watermark)."""
    _setup_logging(verbose)
    if to and not from_:
        raise _fail("--to needs --from (a backfill names its whole window)")
    since, until = _parse_dt(from_, "--from"), _parse_dt(to, "--to")
    if since and until and until <= since:
        raise _fail("--to must be after --from")
    try:
        summary = execute_night(
            config,
            sources=source,
            since=since,
            until=until,
            dry_run=dry_run,
            orchestrator=orchestrator,
            as_of=_parse_dt(as_of, "--as-of"),
        )
    except GuidangError as exc:
        raise _fail(str(exc), 1) from exc
    _report(summary, as_json, strict)


@app.command()
def serve(
    config: ConfigOpt = Path("guidang.yaml"),
    cron: Annotated[str, typer.Option(help="schedule")] = "0 2 * * *",
    timezone: Annotated[str, typer.Option(help="schedule's time zone")] = "Asia/Shanghai",
) -> None:
    """Serve the nightly schedule from this machine (needs a Prefect server: set PREFECT_API_URL)."""
    _settings(config)
    from prefect.schedules import Cron

    from flows.nightly import nightly_transfer

    nightly_transfer.serve(
        name="nightly", schedules=[Cron(cron, timezone=timezone)], parameters={"config": str(config.resolve())}
    )


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="the demo world's folder (built when absent)")],
    no_run: Annotated[bool, typer.Option("--no-run", help="only build the world")] = False,
    strict: Annotated[bool, typer.Option("--strict")] = False,
    orchestrator: Annotated[Orchestrator, typer.Option()] = Orchestrator.prefect,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="run as if it were this time (reproducible re-runs)")
    ] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build a demo world (simulated unified system, two self-built systems, a retention workbook) and run
    one night over it. Run it again over the same folder for the next night: nothing is archived twice."""
    _setup_logging(verbose)
    from guidang_demo.unified import UnifiedSimulator
    from guidang_demo.world import build_world

    world = build_world(directory)
    if not as_json:
        typer.echo(
            f"demo world in {directory}: {world.get('matters', '?')} matters "
            f"({'reused' if world.get('reused') else 'built'})"
        )
    if no_run:
        if as_json:
            typer.echo(json.dumps(world, ensure_ascii=False, indent=2, default=str))
        return
    with UnifiedSimulator(directory / "sources" / "unified") as base_url:
        os.environ["GUIDANG_UNIFIED_URL"] = base_url
        try:
            summary = execute_night(
                directory / "guidang.yaml",
                sources=None,
                since=None,
                until=None,
                dry_run=False,
                orchestrator=orchestrator,
                as_of=_parse_dt(as_of, "--as-of"),
            )
        except GuidangError as exc:
            raise _fail(str(exc), 1) from exc
    _report(summary, as_json, strict)


audit_app = typer.Typer(help="Audit the ledger and the archive (档案局/馆).", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(config: ConfigOpt = Path("guidang.yaml"), as_json: JsonOpt = False) -> None:
    """Recompute the event chain: any changed, inserted or deleted event is reported. Exit 1 if any."""
    from ledger import store

    settings = _settings(config)
    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger, ledger.read() as s:
        count, findings = store.verify_chain(s)
        head = store.chain_head(s)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "events": count,
                    "chain_head": head[1],
                    "ok": not findings,
                    "findings": [f.to_dict() for f in findings],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        typer.echo(f"{count} events checked; chain head {head[1]}")
        for f in findings:
            typer.echo(f"  {f}  ({code_text(f.code)})")
        typer.echo("OK: the event chain is intact" if not findings else f"FAILED: {len(findings)} problem(s)")
    if findings:
        raise typer.Exit(1)


quarantine_app = typer.Typer(help="Matters held back with a reason (隔离区): look, and retry.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
from flows.retention_cli import retention_app  # noqa: E402 - mounted with the others; lazy inside

app.add_typer(retention_app, name="retention")


def _entry_dict(e: Any, *, full: bool = False) -> dict[str, Any]:
    from schemas.model import mask_text

    d = {
        "id": e.id,
        "source": e.source,
        "project_id": e.project_id,
        "codes": e.codes,
        "attempts": e.attempts,
        "created_at": e.created_at.isoformat(),
        "resolved_at": e.resolved_at.isoformat() if e.resolved_at else None,
        "resolution": e.resolution,
        "findings": [{**f, "message": mask_text(f["message"])} for f in e.findings],
    }
    if full:
        d["record"] = e.record  # the operator asked for this one entry: the full record, card number included
    return d


@quarantine_app.command("list")
def quarantine_list(
    config: ConfigOpt = Path("guidang.yaml"),
    all_: Annotated[bool, typer.Option("--all", help="resolved entries too")] = False,
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open quarantine entries, newest last, with their reason codes."""
    from sqlalchemy import select

    from ledger import store
    from ledger.models import QuarantineEntry

    settings = _settings(config)
    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger, ledger.read() as s:
        q = select(QuarantineEntry).order_by(QuarantineEntry.id)
        if not all_:
            q = q.where(QuarantineEntry.resolved_at.is_(None))
        if source:
            q = q.where(QuarantineEntry.source == source)
        entries = [_entry_dict(e) for e in s.scalars(q).all()]
    if as_json:
        typer.echo(json.dumps(entries, ensure_ascii=False, indent=2))
        return
    for e in entries:
        state = f"resolved: {e['resolution']}" if e["resolved_at"] else f"attempts {e['attempts']}"
        typer.echo(f"#{e['id']}  {e['source']}/{e['project_id']}  {','.join(e['codes'])}  ({state})")
        for f in e["findings"]:
            typer.echo(f"      {f['code']} {code_text(f['code'])}: {f['message']}")
    typer.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")


@quarantine_app.command("show")
def quarantine_show(
    entry: Annotated[int, typer.Argument(help="entry id (from `quarantine list`)")],
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """One entry in full, with the record needed to retry it."""
    from ledger import store
    from ledger.models import QuarantineEntry

    settings = _settings(config)
    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger, ledger.read() as s:
        e = s.get(QuarantineEntry, entry)
        if e is None:
            raise _fail(f"no quarantine entry {entry}", 1)
        d = _entry_dict(e, full=True)
    typer.echo(
        json.dumps(d, ensure_ascii=False, indent=2, default=str)
        if as_json
        else "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in d.items())
    )


@quarantine_app.command("retry")
def quarantine_retry(
    entries: Annotated[list[int] | None, typer.Argument(help="entry ids; all open ones if none")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Fetch each matter afresh and put it through the stages again; fixed ones are archived."""
    from flows.pipeline import retry_quarantined

    settings = _settings(config)
    try:
        summary = retry_quarantined(settings, entries or None)
    except GuidangError as exc:
        raise _fail(str(exc), 1) from exc
    _report(summary, as_json, strict=False)


app.command("check")(check_command)
app.add_typer(export_app, name="export")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
