"""`guidang runs ...`: the nights (夜间归档) the ledger knows, and the dead ones closed between nights.

A night killed however it dies leaves its run `running`, and the next night closes it; `close-dead`
does that at once (the night's own code, `night.housekeeping.close_dead_runs_now`), so the console
and `runs list` stop showing a dead night as 进行中 without waiting for one. A live run holds every
one of its sources' locks: it is never closed.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, fail, load_config, masked, open_ledger
from schemas.findings import GuidangError

if TYPE_CHECKING:
    from ledger.models import Run

app = typer.Typer(help="The nights the ledger knows (运行记录): list them, close the dead ones.",
                  no_args_is_help=True)


class RunState(StrEnum):
    RUNNING = "running"
    FAILED = "failed"
    COMPLETED = "completed"


def _run_dict(run: Run) -> dict[str, Any]:
    """One run as shown: its sources (those it was asked for, else those its summary names, else
    "all"), its counts from the summary (none for a run that never closed)."""
    summary = run.summary or {}
    sources = (run.parameters or {}).get("sources") or sorted(summary.get("sources") or {}) or ["all"]
    return masked({
        "run_id": run.id,
        "started": run.started_at.isoformat(timespec="seconds"),
        "ended": run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
        "state": run.status,
        "sources": list(sources),
        "counts": summary.get("totals") or {},
        "stored": (summary.get("stored") or {}).get("packages"),
        "error": run.error,
    })


def _counts_text(run: dict[str, Any]) -> str:
    counts = {k: v for k, v in run["counts"].items() if v and k != "bytes"}
    if run["stored"] is not None:
        counts["stored"] = run["stored"]
    return " ".join(f"{k}={v}" for k, v in counts.items()) or "-"


@app.command("list")
def list_(
    config: ConfigOpt = Path("guidang.yaml"),
    state: Annotated[RunState | None, typer.Option("--state", help="only runs in this state")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="at most this many, newest first")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Runs newest first: id, started, ended, state, sources, counts."""
    from ledger.audit_queries import recent_runs

    settings = load_config(config)
    with open_ledger(settings) as ledger, ledger.read() as s:
        runs = [_run_dict(r) for r in recent_runs(s, status=state.value if state else None, limit=limit)]
    if as_json:
        echo_json(runs)
        return
    typer.echo("\t".join(("run", "started", "ended", "state", "sources", "counts")))
    for r in runs:
        typer.echo("\t".join((r["run_id"], r["started"], r["ended"] or "-", r["state"], ",".join(r["sources"]),
                              _counts_text(r))))
    typer.echo(f"{len(runs)} run{'' if len(runs) == 1 else 's'}")


@app.command("close-dead")
def close_dead(
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Close as failed every `running` run whose source locks are free (it died); a live run holds
    them and is left alone. Exit 0, whether or not any was closed."""
    from night.housekeeping import close_dead_runs_now

    settings = load_config(config)
    try:
        dead = close_dead_runs_now(settings)
    except GuidangError as exc:
        raise fail(str(exc), 1) from exc
    closed = [{"run_id": run_id, "started": started.isoformat(timespec="seconds")} for run_id, started in dead.runs]
    if as_json:
        echo_json({"closed": closed})
        return
    for run in closed:
        typer.echo(f"closed as failed: run {run['run_id']}, started {run['started']}")
    typer.echo(f"{len(closed)} dead run{'' if len(closed) == 1 else 's'} closed")
