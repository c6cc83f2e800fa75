"""What dead runs leave behind, cleared by the next night: run rows still `running`, and the
repository's temporary files and incomplete multipart uploads.

A run killed however it dies (SIGKILL, the machine lost, the ledger unreachable at its close) leaves
its row `running`; the console would show it 进行中 for ever. A live run holds the lock of every one
of its sources from its start to its close, and the lock dies with its holder (ledger/runlock.py),
so a `running` row with one source lock free (or held by the night that looks) is dead. The next
night over any source closes every such row as failed, naming itself, under the setup lock (the
lock every run's row is created under, so no live run is missed). `close_dead_runs_now` does the
same between nights, for `guidang runs close-dead`, and sweeps what the closed runs left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.repositories import open_with_replicas
from connectors.repositories.base import Repository, RepositoryError
from ledger import store
from ledger.models import Run, RunStatus
from ledger.runlock import SETUP, SETUP_WAIT_SECONDS, RunLock, source_lock
from schemas.config import Settings

log = logging.getLogger("guidang")

SWEEP_FLOOR_SECONDS = 10.0  # a write younger than this may be another process's (a fixity checkpoint)
COMMAND = "guidang runs close-dead"  # who closed the runs, when no night did


@dataclass
class DeadRuns:
    """What `close_dead_runs` found: how many it closed, and when the oldest live run started
    (None: no other run is alive), which bounds what the sweep may take as left over."""

    closed: int = 0
    oldest_live: datetime | None = None
    runs: list[tuple[str, datetime]] = field(default_factory=list)  # (id, started) of each run closed


def close_dead_runs(ledger: store.Ledger, settings: Settings, *, held: list[str], run_id: str,
                    closer: str | None = None) -> DeadRuns:
    """Close as failed every other `running` run that is dead. `closer` names who closes them in
    their error (the run `run_id` by default)."""
    found = DeadRuns()
    with ledger.read() as s:
        running = list(s.query(Run).filter(Run.status == RunStatus.RUNNING.value, Run.id != run_id))
    for run in running:
        sources = (run.parameters or {}).get("sources") or [src.name for src in settings.sources]
        if not _dead(ledger, sources, held):
            started = run.started_at.replace(tzinfo=run.started_at.tzinfo or UTC)
            found.oldest_live = started if found.oldest_live is None else min(found.oldest_live, started)
            continue
        why = (f"the run ended without closing (its process was killed, or lost the ledger); "
               f"closed as failed by {closer or f'run {run_id}'}, which found its source lock free")
        with ledger.transaction() as s:
            store.finish_run(s, run.id, status=RunStatus.FAILED, summary=dict(run.summary or {}), error=why)
        log.warning("run %s, started %s, had died without closing: closed as failed", run.id,
                    run.started_at.isoformat(timespec="seconds"))
        found.closed += 1
        found.runs.append((run.id, run.started_at.replace(tzinfo=run.started_at.tzinfo or UTC)))
    return found


def close_dead_runs_now(settings: Settings) -> DeadRuns:
    """What the next night would do first, done now: close as failed every `running` run whose
    source locks are free, under the setup lock, and sweep the repository's leftovers of crashed
    writes when one was closed (the next night, finding no dead run, would not sweep them)."""
    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        setup = RunLock(ledger, SETUP)
        setup.acquire(COMMAND, wait_seconds=SETUP_WAIT_SECONDS)
        try:
            dead = close_dead_runs(ledger, settings, held=[], run_id=COMMAND, closer=f"`{COMMAND}`")
        finally:
            setup.release()
    if dead.closed:
        try:
            repository = open_with_replicas(settings)
        except RepositoryError as exc:
            log.warning("leftovers of crashed writes not swept: the repository cannot be opened: %s", exc)
            return dead
        sweep_leftovers(repository, dead)
    return dead


def _dead(ledger: store.Ledger, sources: list[str], held: list[str]) -> bool:
    """A live run holds every one of its sources' locks: one that this night holds, or that is free, says dead."""
    if any(name in held for name in sources):
        return True
    return any(RunLock(ledger, source_lock(name)).is_free() for name in sources)


def sweep_leftovers(repository: Repository, dead: DeadRuns) -> list[str]:
    """Remove the repository's leftovers of crashed writes (fs: temporary files; S3: incomplete
    multipart uploads) begun before every live run; logged, never fatal to the night.

    Only after a dead run was closed: a run that ends, however badly, removes its own temporary
    files, so leftovers come from runs that died; and on a file-system archive the sweep walks
    every folder, which a night should not pay for when nothing died."""
    if dead.closed == 0:
        return []
    age = SWEEP_FLOOR_SECONDS
    if dead.oldest_live is not None:
        age = max(age, (datetime.now(UTC) - dead.oldest_live).total_seconds())
    try:
        swept = repository.sweep_temporary(older_than_seconds=age)
    except RepositoryError as exc:
        log.warning("leftovers of crashed writes not swept from the repository: %s", exc)
        return []
    if swept:
        log.warning("swept %d leftover(s) of crashed writes from the repository: %s", len(swept),
                    ", ".join(swept[:10]) + (" …" if len(swept) > 10 else ""))
    return swept
