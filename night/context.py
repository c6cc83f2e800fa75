"""A run's lifecycle and its counting: what every stage is handed, and what a night reports.

Every stage of night/engine.py takes the same `RunContext` (ledger, repository, retention book,
connectors, the run's id and nominal time) and adds to a `SourceSummary`; opening and closing the
run live here, beside them, so that the stage modules hold only their stage.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url

from connectors.repositories import open_repository, open_with_replicas
from connectors.repositories.base import Repository
from connectors.sources import open_source
from connectors.sources.base import SourceConnector
from guidang_io.block_reads import keep_blocks_on_the_heap
from guidang_io.crashpoints import crashpoint
from ledger import anchors, chain, queries, replica_state, store
from ledger.models import RunStatus
from ledger.runlock import SETUP, SETUP_WAIT_SECONDS, RunLock, check_holder, source_lock
from night.anchoring import present_checkpoints, store_checkpoints
from night.housekeeping import close_dead_runs, sweep_leftovers
from night.progress import NightProgress
from night.retention_book import RetentionBook, load_book
from night.window import WINDOW_SPOOL, Spool
from schemas.config import Settings, SqlSource, UnifiedSource
from schemas.findings import GuidangError

SourceConfig = UnifiedSource | SqlSource

SUMMARY_KEYS = (
    "collected", "archived", "quarantined", "not_in_scope", "waiting", "unchanged", "held", "pending", "superseded",
)
MAX_STORE_ERRORS = 3  # distinct store errors a summary quotes; one is usually all there is


@dataclass
class SourceSummary:
    """What one source did in one run; `pending` are matters left for the next run (transient faults),
    `held` those collected again while still in quarantine as they are (not "unchanged": held back),
    `superseded` rows of a 办件编号 that a newer row of the same collect replaced, `waiting` matters of a
    unit or 事项类型 not yet enabled (待启用, schemas/units.py)."""

    collected: int = 0
    waiting: int = 0
    archived: int = 0
    quarantined: int = 0
    not_in_scope: int = 0
    unchanged: int = 0
    held: int = 0
    pending: int = 0
    superseded: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    resolved: list[str] = field(default_factory=list)  # quarantine entries a retry closed, each with why
    error: str | None = None
    bytes: int = 0
    store_errors: list[str] = field(default_factory=list)  # the store's own words, a few of them
    unacknowledged: int = 0  # 归档回传 that did not reach the source (the next night retries them)
    acknowledge_error: str | None = None

    def add(self, other: SourceSummary) -> None:
        for k in SUMMARY_KEYS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.reasons.update(other.reasons)
        self.bytes += other.bytes
        for message in other.store_errors:
            self.store_failed(message)
        self.unacknowledged += other.unacknowledged
        self.acknowledge_error = self.acknowledge_error or other.acknowledge_error

    def store_failed(self, message: str) -> None:
        """A package the store did not take after its retries: the source ends failed with the
        store's words, and the matter stays pending for the next night."""
        if message not in self.store_errors and len(self.store_errors) < MAX_STORE_ERRORS:
            self.store_errors.append(message)

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in SUMMARY_KEYS}


class NightDeadlinePassed(GuidangError):
    """The night ran past night_deadline_minutes: it stops at its next step and ends failed."""


@dataclass
class RunContext:
    """Everything a stage needs, opened once per run and shared by the worker threads."""

    settings: Settings
    ledger: store.Ledger
    repository: Repository
    book: RetentionBook
    run_id: str
    staging_root: Path
    now: datetime  # the run's nominal time: the window's end and the packages' 归档时间
    dry_run: bool = False
    connectors: dict[str, SourceConnector] = field(default_factory=dict)
    locks: list[RunLock] = field(default_factory=list)  # one night at a time per source (ledger/runlock.py)
    scratch: Path | None = None  # a dry run's own temporary folder (staging, an empty ledger), removed at close
    worker_of: str | None = None  # set in a worker process's view of another process's night (night/work_units.py)
    staging_claim: IO[bytes] | None = None  # held while the run uses its staging folder (claim_staging)
    sources: list[str] | None = None  # the sources the run locked (None: a dry run, which locks none)
    progress: NightProgress = field(default_factory=NightProgress)  # counts for a listener (night/progress.py)
    guarding: list[str] = field(default_factory=list)  # the sources whose locks every commit checks now
    store_failures_in_a_row: int = 0  # packages the repository did not take, since the last it did
    deadline: float | None = None  # time.monotonic() by which the night stops (night_deadline_minutes)
    clearing: Callable[[], None] | None = None  # waits for the retired staging's removal (package.clear_retired)
    _spool: Spool | None = None
    _content: Any = None  # packager.content.ContentOptions, built by content_options()

    def check_locks(self) -> None:
        """Before a commit that records work: the run still holds the lock of each source it works on
        (LockLost, and the transaction rolls back, when it does not)."""
        if self.worker_of is not None:  # a worker holds no lock: the holder row must still name its run
            for name in self.guarding:
                check_holder(self.ledger, source_lock(name), self.run_id)
            return
        for lock in self.locks:
            if lock.name.removeprefix("source:") in self.guarding:
                lock.check()

    @contextmanager
    def guarded(self, names: list[str]) -> Iterator[None]:
        """Commits inside check the locks of `names` (one source's, or every source's for the batches)."""
        before, self.guarding = self.guarding, list(names)
        try:
            for lock in self.locks:  # at once, before any work: a lock lost since the last commit
                if lock.name.removeprefix("source:") in self.guarding:
                    lock.check()
            yield
        finally:
            self.guarding = before

    def check_deadline(self) -> None:
        """Raise NightDeadlinePassed once the night's own deadline has passed (at a step's start)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise NightDeadlinePassed(f"the night's deadline (night_deadline_minutes: "
                                      f"{self.settings.night_deadline_minutes:g}) passed; the rest is the next night's")

    def live_sources(self) -> set[str] | None:
        """The run's sources whose locks it still holds (None: a run that locked none)."""
        if self.sources is None:
            return None
        lost = {lock.name.removeprefix("source:") for lock in self.locks if lock.lost is not None}
        return set(self.sources) - lost

    def spool(self) -> Spool | None:
        """Where the run's own process keeps its collected window (night/window.py); a worker's view
        of another process's night has none, and hands what it collects back whole."""
        if self.worker_of is not None:
            return None
        if self._spool is None:
            self._spool = Spool(self.staging_root / WINDOW_SPOOL)
        return self._spool

    def content_options(self) -> Any:
        """What the content checks take from the settings (packager.content.content_options), built once:
        every matter staged here shares the one object, which a chunk handed to another process then
        carries once instead of once a matter (pickle keeps one copy of one object)."""
        if self._content is None:
            from packager.content import content_options  # the packager loads where matters are packaged

            self._content = content_options(self.settings)
        return self._content

    def connector(self, source: SourceConfig) -> SourceConnector:
        if source.name not in self.connectors:
            self.connectors[source.name] = open_source(source, base_dir=self.settings.base_dir)
        return self.connectors[source.name]

    def stop_clearing(self) -> None:
        if self.clearing is not None:
            self.clearing()
            self.clearing = None

    def close(self) -> None:
        self.stop_clearing()
        if self._spool is not None:
            self._spool.close()
        for c in self.connectors.values():
            c.close()
        for lock in reversed(self.locks):
            lock.release()
        if self.staging_claim is not None:
            self.staging_claim.close()
        self.ledger.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def open_run(
    settings: Settings,
    *,
    parameters: dict[str, Any],
    dry_run: bool = False,
    now: datetime | None = None,
    sources: list[str] | None = None,
) -> RunContext:
    """Open the ledger, take the run lock of every source the run will collect (`sources`, all by
    default; a second night over any of them meanwhile is refused: RunLocked), load the retention
    book and record the run. Nothing of the night is read or written before the locks."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    keep_blocks_on_the_heap()  # this process reads documents too (a night of one chunk per source)
    if dry_run:
        return open_dry_run(settings, now)
    ledger = store.Ledger(settings.resolve_url(settings.ledger_url))
    run_id = store.new_run_id()
    names = sorted(sources if sources is not None else [s.name for s in settings.sources])
    locks: list[RunLock] = []
    try:
        for name in names:  # in one order, so that two runs cannot each hold what the other waits for
            lock = RunLock(ledger, source_lock(name))
            lock.acquire(run_id)
            locks.append(lock)
        setup = RunLock(ledger, SETUP)  # the first table import and the run row, one run at a time
        setup.acquire(run_id, wait_seconds=SETUP_WAIT_SECONDS)
        try:
            book = load_book(ledger, settings)
            repository = open_with_replicas(settings)
            with ledger.transaction() as s:
                run = store.start_run(s, {**parameters, "as_of": now.isoformat()}, run_id=run_id)
            dead = close_dead_runs(ledger, settings, held=names, run_id=run_id)
        finally:
            setup.release()
    except BaseException:
        for lock in reversed(locks):
            lock.release()
        ledger.close()
        raise
    crashpoint("run-opened")
    staging = settings.resolve(settings.staging)
    staging_root = staging / run.id
    staging_root.mkdir(parents=True, exist_ok=True)
    in_use = claim_staging(staging_root)
    remove_stale_staging(staging)
    sweep_leftovers(repository, dead)
    ctx = RunContext(settings, ledger, repository, book, run.id, staging_root, now, dry_run, locks=locks,
                     staging_claim=in_use, sources=names)
    ledger.before_commit = ctx.check_locks
    return ctx


STAGING_CLAIM = ".in-use"


def claim_staging(folder: Path) -> IO[bytes]:
    """Mark a run's staging folder as in use for as long as the run's process lives (an OS lock on a
    file inside it, gone when the process dies however it dies)."""
    claim = (folder / STAGING_CLAIM).open("ab")
    fcntl.flock(claim.fileno(), fcntl.LOCK_EX)
    return claim


def remove_stale_staging(staging: Path) -> None:
    """Scratch folders of runs that were killed: nothing in them is durable. A folder another run is
    using right now (runs over other sources, side by side) is left alone."""
    for folder in staging.iterdir():
        claim_path = folder / STAGING_CLAIM
        try:
            with claim_path.open("ab") as claim:
                fcntl.flock(claim.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
        except BlockingIOError:
            continue  # in use
        except (FileNotFoundError, NotADirectoryError):
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)  # a folder left before claims existed


def open_dry_run(settings: Settings, now: datetime) -> RunContext:
    """A run that writes nothing anywhere: no ledger file, no retention import, no run row or event,
    no staging left in the configured folder, no repository write (the stages skip those).

    An existing ledger is opened without migrating it and only read; a SQLite ledger that does not
    exist yet is stood in for by an empty one in a temporary folder, removed at close with the
    dry run's staging. No run lock either: taking it is a write, and a dry run changes nothing a
    real run could trip over."""
    url = settings.resolve_url(settings.ledger_url)
    scratch = Path(tempfile.mkdtemp(prefix="guidang-dry-run-"))
    try:
        database = make_url(url).database if url.startswith("sqlite") else None
        if url.startswith("sqlite") and (not database or database == ":memory:" or not Path(database).exists()):
            ledger = store.Ledger(f"sqlite:///{scratch / 'ledger.sqlite'}")
        else:
            ledger = store.Ledger(url, migrate=False)
        try:
            book = load_book(ledger, settings, dry_run=True)
            repository = open_repository(settings.repository, base_dir=settings.base_dir)
        except BaseException:
            ledger.close()
            raise
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    run_id = store.new_run_id()
    staging_root = scratch / "staging" / run_id
    staging_root.mkdir(parents=True)
    # the converter's profiles are a cache a real night keeps; a dry run keeps its own in the scratch
    converter = settings.formats.converter.model_copy(update={"profiles": str(scratch / "converter")})
    settings = settings.model_copy(update={"formats": settings.formats.model_copy(update={"converter": converter})})
    return RunContext(settings, ledger, repository, book, run_id, staging_root, now, True, scratch=scratch)


def close_run(ctx: RunContext, summaries: dict[str, SourceSummary], *, failed: list[str]) -> dict[str, Any]:
    summary = build_summary(ctx.run_id, summaries, dry_run=ctx.dry_run)
    for name, connector in ctx.connectors.items():  # sql sources: rows no window collects (NULL update column)
        null_updated = getattr(connector, "null_updated", None)
        if name in summary["sources"] and null_updated is not None:
            summary["sources"][name]["null_updated"] = null_updated
            summary["sources"][name]["update_column"] = getattr(connector, "update_column", None)
        unordered = getattr(connector, "unordered", None)
        if name in summary["sources"] and unordered:  # rows whose update value no window can order
            summary["sources"][name]["unordered"] = unordered
            summary["sources"][name]["update_column"] = getattr(connector, "update_column", None)
    if ctx.dry_run:  # nothing to record: the summary is all a dry run leaves
        summary["status"] = str(RunStatus.FAILED if failed else RunStatus.COMPLETED)
        ctx.close()
        return summary
    present = present_checkpoints(ctx.repository)
    with ctx.ledger.transaction() as s:
        in_quarantine = queries.held_by_source(s)
        for name, source_summary in summary["sources"].items():
            source_summary["in_quarantine"] = in_quarantine.get(name, 0)
        summary["totals"]["in_quarantine"] = sum(in_quarantine.get(n, 0) for n in summary["sources"])
        packages, stored_bytes = queries.stored_by_run(s, ctx.run_id)
        summary["stored"] = {"packages": packages, "bytes": stored_bytes}
        for name, n in queries.stored_by_source(s, ctx.run_id).items():
            if name in summary["sources"]:  # the ledger's word, also for a source cut short by a failure
                summary["sources"][name]["stored"] = n
        summary["failures"] = list(failed)
        status = RunStatus.FAILED if failed else RunStatus.COMPLETED
        summary["status"] = str(status)
        store.finish_run(s, ctx.run_id, status=status, summary=summary, error="; ".join(failed) or None)
        anchors.note_stored(s, present, ctx.run_id)  # the anchors earlier nights stored: write-once from now
        anchors.record_checkpoint(s, ctx.run_id, "night")  # the night's anchor, stored below
        # the head after the run's own last event (run-completed / run-failed): what audit verify sees
        head_seq, head_hash = chain.chain_head(s)
        summary["ledger"] = {"events": head_seq, "chain_head": head_hash}
        store.set_run_summary(s, ctx.run_id, summary)
    not_stored = store_checkpoints(ctx.ledger, ctx.repository, ctx.settings)
    if not_stored is not None:  # the night's evidence did not reach the store: the night has failed
        summary["failures"].append(not_stored)
        summary["status"] = str(RunStatus.FAILED)
        with ctx.ledger.transaction() as s:
            store.fail_run_after(s, ctx.run_id, summary=summary, error="; ".join(summary["failures"]))
            head_seq, head_hash = chain.chain_head(s)
            summary["ledger"] = {"events": head_seq, "chain_head": head_hash}
            store.set_run_summary(s, ctx.run_id, summary)
    behind = getattr(ctx.repository, "behind", None)
    if behind is not None:  # copies configured (replicas:): which this night left out, for the next one
        with ctx.ledger.transaction() as s:
            replica_state.note_left_out(s, ctx.run_id, behind, summary)
    ctx.stop_clearing()
    shutil.rmtree(ctx.staging_root, ignore_errors=True)
    ctx.close()
    return summary


def build_summary(run_id: str, summaries: dict[str, SourceSummary], *, dry_run: bool) -> dict[str, Any]:
    totals = SourceSummary()
    for s in summaries.values():
        totals.add(s)
    return {
        "run_id": run_id,
        "dry_run": dry_run,
        "totals": totals.counts() | {"bytes": totals.bytes},
        "sources": {
            name: s.counts()
            | {"bytes": s.bytes, "quarantine_reasons": dict(sorted(s.reasons.items()))}
            | ({"error": s.error} if s.error else {})
            | ({"resolved": list(s.resolved)} if s.resolved else {})
            | ({"unacknowledged": s.unacknowledged, "acknowledge_error": s.acknowledge_error}
               if s.unacknowledged else {})
            for name, s in summaries.items()
        },
        "quarantine_reasons": dict(sorted(totals.reasons.items())),
    }
