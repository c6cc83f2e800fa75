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
) -> dict[str, Any]:
    """Run one night with Prefect (the deployment's code path) or with plain threads."""
    if orchestrator is Orchestrator.local:
        from flows.pipeline import run_nightly

        return run_nightly(_settings(config_path), sources=sources, since=since, until=until, dry_run=dry_run)
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "guidang")
    from flows.nightly import RunFailed, nightly_transfer

    _settings(config_path)  # report configuration errors before Prefect starts
    state = nightly_transfer(
        config=str(config_path), sources=sources, since=since, until=until, dry_run=dry_run, return_state=True
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
            config, sources=source, since=since, until=until, dry_run=dry_run, orchestrator=orchestrator
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
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build a demo world (simulated unified system, two self-built systems, a retention workbook) and run
    one night over it. Run it again over the same folder for the next night: nothing is archived twice."""
    _setup_logging(verbose)
    from connectors.simulator.world import build_world

    from connectors.simulator.unified import UnifiedSimulator

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
    with UnifiedSimulator(directory / "sources" / "unified") as sim:
        os.environ["GUIDANG_UNIFIED_URL"] = sim.base_url
        try:
            summary = execute_night(
                directory / "guidang.yaml",
                sources=None,
                since=None,
                until=None,
                dry_run=False,
                orchestrator=orchestrator,
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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
