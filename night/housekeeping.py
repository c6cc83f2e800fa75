"""What dead runs leave behind, cleared by the next night: run rows still `running`, and the
repository's temporary files and incomplete multipart uploads.

A run killed however it dies (SIGKILL, the machine lost, the ledger unreachable at its close) leaves
its row `running`; the console would show it 进行中 for ever. A live run holds the lock of every one
of its sources from its start to its close, and the lock dies with its holder (ledger/runlock.py),
so a `running` row with one source lock free (or held by the night that looks) is dead. The next
night over any source closes every such row as failed, naming itself, under the setup lock (the
lock every run's row is created under, so no live run is missed).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from connectors.repositories.base import Repository, RepositoryError
from ledger import store
from ledger.models import Run, RunStatus
from ledger.runlock import RunLock, source_lock
from schemas.config import Settings

log = logging.getLogger("guidang")

SWEEP_FLOOR_SECONDS = 60.0  # a write younger than this may be another process's (a fixity checkpoint)


def close_dead_runs(ledger: store.Ledger, settings: Settings, *, held: list[str], run_id: str) -> datetime | None:
    """Close as failed every other `running` run that is dead; returns when the oldest live one
    started (None: no other run is alive), which bounds what the sweep may take as left over."""
    oldest: datetime | None = None
    with ledger.read() as s:
        running = list(s.query(Run).filter(Run.status == RunStatus.RUNNING.value, Run.id != run_id))
    for run in running:
        sources = (run.parameters or {}).get("sources") or [src.name for src in settings.sources]
        if not _dead(ledger, sources, held):
            started = run.started_at.replace(tzinfo=run.started_at.tzinfo or UTC)
            oldest = started if oldest is None else min(oldest, started)
            continue
        why = (f"the run ended without closing (its process was killed, or lost the ledger); "
               f"closed as failed by run {run_id}, which found its source lock free")
        with ledger.transaction() as s:
            store.finish_run(s, run.id, status=RunStatus.FAILED, summary=dict(run.summary or {}), error=why)
        log.warning("run %s, started %s, had died without closing: closed as failed", run.id,
                    run.started_at.isoformat(timespec="seconds"))
    return oldest


def _dead(ledger: store.Ledger, sources: list[str], held: list[str]) -> bool:
    """A live run holds every one of its sources' locks: one that this night holds, or that is free, says dead."""
    if any(name in held for name in sources):
        return True
    return any(RunLock(ledger, source_lock(name)).is_free() for name in sources)


def sweep_leftovers(repository: Repository, *, oldest_live_run: datetime | None) -> list[str]:
    """Remove the repository's leftovers of crashed writes (fs: temporary files; S3: incomplete
    multipart uploads) begun before every live run; logged, never fatal to the night."""
    age = SWEEP_FLOOR_SECONDS
    if oldest_live_run is not None:
        age = max(age, (datetime.now(UTC) - oldest_live_run).total_seconds())
    try:
        swept = repository.sweep_temporary(older_than_seconds=age)
    except RepositoryError as exc:
        log.warning("leftovers of crashed writes not swept from the repository: %s", exc)
        return []
    if swept:
        log.warning("swept %d leftover(s) of crashed writes from the repository: %s", len(swept),
                    ", ".join(swept[:10]) + (" …" if len(swept) > 10 else ""))
    return swept
