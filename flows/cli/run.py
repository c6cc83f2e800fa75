"""`guidang run` and `guidang demo`: one night now, the nightly schedule, a demo world.

A night runs either under Prefect (the deployment's code path: `flows.nightly.nightly_transfer`) or
on plain threads (`--orchestrator local`); both return the same summary, printed by `report_run`.
"""

from __future__ import annotations

import os
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import (
    ConfigOpt,
    JsonOpt,
    VerboseOpt,
    echo_json,
    fail,
    load_config,
    mask_loggers,
    parse_datetime,
    report_run,
    setup_logging,
    source_config,
)
from flows.cli.progress_bars import night_bars, show_progress
from schemas.findings import GuidangError

if TYPE_CHECKING:
    from night.progress import NightCallback
    from schemas.config import Settings

AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="run as if it were this time (reproducible re-runs)")]


class Orchestrator(StrEnum):
    prefect = "prefect"
    local = "local"


def check_night_config(config_path: Path, sources: list[str] | None = None) -> Settings:
    """Everything a night's configuration can be wrong about, found before any work and before
    Prefect starts: guidang.yaml itself, the sources named on the command line, and each SQL
    source's mapping and queries (parsed, not run). Each mistake exits 2 saying what it is."""
    settings = load_config(config_path)
    selected = [source_config(settings, name) for name in sources] if sources else list(settings.sources)
    for src in selected:
        if src.kind != "sql":
            continue
        from sqlalchemy.exc import ArgumentError

        from connectors.sources import open_source

        try:
            open_source(src, base_dir=settings.base_dir).close()  # checks the mapping; connects lazily
        except (GuidangError, ArgumentError, ValueError) as exc:
            raise fail(f"source {src.name}: {exc}") from exc
    return settings


def execute_night(
    config_path: Path,
    orchestrator: Orchestrator,
    as_of: datetime | None = None,
    *,
    sources: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    verbose: bool = False,
    progress: NightCallback | None = None,
) -> dict[str, Any]:
    """Run one night with Prefect (the deployment's code path) or with plain threads.

    The configuration is checked first (exit 2, Prefect never started). A GuidangError (the night
    could not start, or was cut short) exits 1 with its message; a night that ran returns its
    summary, failed or not. Under Prefect the terminal shows guidang's lines and the summary:
    Prefect's INFO lines go to its API (the UI's logs) and reach the terminal only with --verbose.
    `progress` is told each source's counts as the night goes (night/progress.py), either way."""
    settings = check_night_config(config_path, sources)
    window: dict[str, Any] = {"sources": sources, "since": since, "until": until, "dry_run": dry_run}
    if orchestrator is not Orchestrator.local:
        # Before the forkserver starts: a Dask night's workers are forked from it with Prefect
        # imported, its logging configured from this environment (flows/dask_preload.py).
        os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "guidang")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # a temporary server sends nothing out
        # A temporary server's first start on a machine creates and migrates its database, which on
        # a small busy machine outlasts Prefect's default startup timeout.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        if not verbose:  # Prefect's own console handler, where its configuration uses one
            os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    _start_workers_early(settings, orchestrator, dry_run)
    try:
        if orchestrator is Orchestrator.local:
            from night.engine import run_nightly

            return run_nightly(settings, **window, now=as_of, progress=progress)
        from flows.nightly import RunFailed, nightly_transfer
        from night.progress import listening

        mask_loggers("guidang", "prefect", "prefect.extra", "prefect.flow_runs", "prefect.task_runs")
        with listening(progress):  # the flow's parameters are plain values: it finds the listener here
            state = nightly_transfer(config=str(config_path), **window, as_of=as_of, return_state=True)
        result = state.result(raise_on_failure=False)
        if isinstance(result, RunFailed):
            return result.summary
        if isinstance(result, BaseException):
            raise result
        if result is None and state.is_failed():  # the night could not start (said on the log already)
            raise GuidangError(state.message or "the night failed")
        return result
    except GuidangError as exc:
        raise fail(str(exc), 1) from exc
    finally:
        from night import forkserver

        forkserver.stop_unused()


def _start_workers_early(settings: Settings, orchestrator: Orchestrator, dry_run: bool) -> None:
    """Start the workers' forkserver (night/forkserver.py) now, beside this process's own imports,
    when the night will have local workers: more than one wanted, a night that writes, and the
    local orchestrator or Prefect on the flow's threads (night/fanout.fanout_for, nightly._fanout);
    or a Prefect night on a LocalCluster of its own, whose Dask workers are forked from it
    (flows/runners.night_cluster), with Dask's and the tasks' modules preloaded as well."""
    from night import forkserver  # light: importing it starts nothing

    o = settings.orchestration
    threads = orchestrator is Orchestrator.local or o.task_runner == "threads"
    if threads and forkserver.local_workers(settings, dry_run=dry_run):
        forkserver.start()
    elif not threads and o.task_runner == "dask" and not o.dask_address and not dry_run:
        forkserver.start(also=["flows.dask_preload"])


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
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the nightly transfer once now (or backfill --from/--to without moving the watermark)."""
    setup_logging(verbose)
    if to and not from_:
        raise fail("--to needs --from (a backfill names its whole window)")
    since, until = parse_datetime(from_, "--from"), parse_datetime(to, "--to")
    if since and until and until <= since:
        raise fail("--to must be after --from")
    nominal = parse_datetime(as_of, "--as-of")
    with night_bars(show_progress(as_json)) as on_progress:  # ended before the summary is printed
        summary = execute_night(
            config,
            orchestrator=orchestrator,
            sources=source,
            since=since,
            until=until,
            dry_run=dry_run,
            as_of=nominal,
            verbose=verbose,
            progress=on_progress,
        )
    report_run(summary, as_json, strict)


def demo(
    directory: Annotated[Path, typer.Argument(help="the demo world's folder (built when absent)")],
    no_run: Annotated[bool, typer.Option("--no-run", help="only build the world")] = False,
    strict: Annotated[bool, typer.Option("--strict")] = False,
    orchestrator: Annotated[Orchestrator, typer.Option()] = Orchestrator.prefect,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build a demo world (simulated unified system, two self-built systems, a retention workbook) and run
    one night over it. Run it again over the same folder for the next night: nothing is archived twice."""
    setup_logging(verbose)
    from guidang_demo.unified_simulator import UnifiedSimulator
    from guidang_demo.world import build_world

    world = build_world(directory)
    if not as_json:
        typer.echo(
            f"demo world in {directory}: {world.get('matters', '?')} matters "
            f"({'reused' if world.get('reused') else 'built'})"
        )
    if no_run:
        if as_json:
            echo_json(world)
        return
    nominal = parse_datetime(as_of, "--as-of")
    with UnifiedSimulator(directory / "sources" / "unified") as base_url, \
            night_bars(show_progress(as_json)) as on_progress:
        os.environ["GUIDANG_UNIFIED_URL"] = base_url
        summary = execute_night(
            directory / "guidang.yaml",
            orchestrator=orchestrator,
            as_of=nominal,
            verbose=verbose,
            progress=on_progress,
        )
    report_run(summary, as_json, strict)
