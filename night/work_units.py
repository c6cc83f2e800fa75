"""Work units: a chunk of a night that any process can run, handed only plain values.

A unit is (`RunRef`, source name, chunk of matters). `RunRef` names the night (its id, nominal
time, staging folder) and how to read its configuration; the process that runs the unit opens
what it needs (ledger session, repository, connector, retention book) itself, once per process,
and keeps it for the night's later units (`context_for`). The process that opened the night
registers its own `RunContext`, so threads there reuse it; a worker process, a Dask worker or
another host opens its own from the same configuration.

Why not hand a task the open context: a live ledger engine, an S3 client and HTTP connections
cannot be pickled, so such a task can only ever run in the process that opened them, and the
scale-out that Dask and work pools offer would be out of reach.

What a unit returns (`ChunkOutcome`, `TransferOutcome`) is plain data too. The order-dependent
step, numbering (件号), stays with the process that opened the night, so a night's 件号 do not
depend on which worker ran which chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from connectors.repositories import open_with_replicas
from guidang_io.block_reads import keep_blocks_on_the_heap
from ledger import store
from night.context import RunContext, SourceConfig
from night.retention_book import load_book
from night.staging import ChunkOutcome, stage_chunk
from night.transferring import TransferOutcome, transfer_chunk
from night.window import Collected, pack
from night.work import Staged, Work
from schemas.config import Settings, load_settings
from schemas.findings import GuidangError


@dataclass(frozen=True)
class RunRef:
    """A night as plain values. `settings` travels only to local worker processes (a pipe on this
    machine); to a cluster only `config` does, and each worker reads it and its environment there,
    so no password or key crosses the network."""

    run_id: str
    now: datetime
    staging_root: str
    config: str | None = None  # the absolute path of guidang.yaml
    settings: Settings | None = None

    def load_settings(self) -> Settings:
        if self.settings is not None:
            return self.settings
        if self.config is None:
            raise GuidangError(f"run {self.run_id}: a work unit needs the configuration file or the settings")
        return load_settings(self.config)

    def for_cluster(self) -> RunRef:
        """The same night without the settings object (see the class docstring)."""
        return RunRef(self.run_id, self.now, self.staging_root, config=self.config)


_CONTEXTS: dict[str, RunContext] = {}
_LOCK = threading.Lock()
Unit = Callable[["RunRef", str, Any], Any]


class LocalWorkers(Protocol):
    """The night's worker processes on this machine (night/fanout.ProcessFanout)."""

    def run_unit(self, unit: Unit, ref: RunRef, source_name: str, chunk: Any) -> Any: ...

    def warm_up(self) -> None: ...


_WORKERS: dict[str, LocalWorkers] = {}


def ref_of(ctx: RunContext) -> RunRef:
    config = ctx.settings.config_file
    return RunRef(ctx.run_id, ctx.now, str(ctx.staging_root), config=str(config) if config else None,
                  settings=ctx.settings)


def register(ctx: RunContext, workers: LocalWorkers | None = None) -> None:
    """The opening process's own context: its threads run units against it without reopening; and
    its local worker processes, if it has them, which `run_unit` hands units to."""
    with _LOCK:
        _CONTEXTS[ctx.run_id] = ctx
        if workers is not None:
            _WORKERS[ctx.run_id] = workers


def run_unit(unit: Unit, ref: RunRef, source_name: str, chunk: Any) -> Any:
    """`unit` where the night's CPU work belongs. A Prefect task on the flow's threads would
    otherwise parse, identify and package its chunk under the run process's one GIL while the
    night's worker processes stood idle, and a Prefect night would be much slower than a local
    one; in any other process (a Dask worker, a work pool's) it runs right here."""
    with _LOCK:
        workers = _WORKERS.get(ref.run_id)
    if workers is None:
        return unit(ref, source_name, chunk)
    return workers.run_unit(unit, ref, source_name, chunk)


def warm_up(run_id: str) -> None:
    """Start the night's local worker processes, if it has them, ahead of the first chunk."""
    with _LOCK:
        workers = _WORKERS.get(run_id)
    if workers is not None:
        workers.warm_up()


def registered(run_id: str) -> RunContext:
    """The context this process opened for the night (`register`)."""
    with _LOCK:
        ctx = _CONTEXTS.get(run_id)
    if ctx is None or ctx.worker_of is not None:
        raise GuidangError(f"run {run_id} was not opened in this process")
    return ctx


def forget(run_id: str) -> None:
    with _LOCK:
        _CONTEXTS.pop(run_id, None)
        _WORKERS.pop(run_id, None)


def context_for(ref: RunRef) -> RunContext:
    """This process's context for the night: the registered one, or one opened now (and kept)."""
    with _LOCK:
        ctx = _CONTEXTS.get(ref.run_id)
        if ctx is None:
            ctx = _open_worker_context(ref)
            for stale in [k for k, c in _CONTEXTS.items() if c.worker_of is not None]:
                _CONTEXTS.pop(stale).close()  # a worker keeps one night at a time: the previous is over
            _CONTEXTS[ref.run_id] = ctx
        return ctx


def _open_worker_context(ref: RunRef) -> RunContext:
    """A worker's view of a night another process opened: the same ledger (no migration, no run
    lock: the opener holds it), repository and retention versions, and the night's staging folder."""
    settings = ref.load_settings()
    keep_blocks_on_the_heap()  # a Dask or work-pool worker; local workers have it from their server
    ledger = store.Ledger(settings.resolve_url(settings.ledger_url), migrate=False)
    try:
        book = load_book(ledger, settings)
        repository = open_with_replicas(settings)
    except BaseException:
        ledger.close()
        raise
    staging_root = Path(ref.staging_root)
    staging_root.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(settings, ledger, repository, book, ref.run_id, staging_root, ref.now, worker_of=ref.run_id)
    ledger.before_commit = ctx.check_locks  # the run's lock of the unit's source, as the holder row says
    return ctx


def _source(ctx: RunContext, name: str) -> SourceConfig:
    return ctx.settings.source(name)


def collect_matters(ctx: RunContext, source: SourceConfig, since: datetime, until: datetime) -> list[Collected]:
    """The whole window, as the source gives it, each matter packed as it arrives (night/window.py),
    into the run's spool when this is the run's own process. A source that stays unreachable raises
    SourceUnavailable."""
    spool = ctx.spool()
    return [pack(item, spool) for item in ctx.connector(source).completed_between(since, until)]


def collect_unit(ref: RunRef, source_name: str, since: datetime, until: datetime) -> list[Collected]:
    """`collect_matters` as a work unit."""
    ctx = context_for(ref)
    return collect_matters(ctx, _source(ctx, source_name), since, until)


def stage_unit(ref: RunRef, source_name: str, works: list[Work]) -> ChunkOutcome:
    """Appraise, fetch, inspect and precheck one chunk (night/staging.py)."""
    ctx = context_for(ref)
    if ctx.worker_of is not None:
        ctx.guarding = [source_name]
    return stage_chunk(ctx, _source(ctx, source_name), works)


def transfer_unit(ref: RunRef, source_name: str, staged: list[Staged]) -> TransferOutcome:
    """Finalize, store, verify and acknowledge one numbered chunk (night/transferring.py)."""
    ctx = context_for(ref)
    if ctx.worker_of is not None:
        ctx.guarding = [source_name]
    return transfer_chunk(ctx, _source(ctx, source_name), staged)
