"""How the chunks of one source are run: threads in the run's process, or local worker processes.

The stage order is night/engine.py's; a `Fanout` only decides where each chunk (a work unit,
night/work_units.py) runs. Threads share the run's open context and suit small nights and the Prefect
flow; worker processes (`orchestration.workers`, one per core and one more by default) are what makes a night
use every core: hashing releases the GIL, but parsing PDFs, building 元数据 and talking to the
ledger do not, and in one process they ran one at a time.

A worker process is forked from a clean server process (multiprocessing's "forkserver"), never
from the run's process with its threads and open connections. Its log records travel back over a
queue and are handled by the run's own loggers (the terminal, Prefect's API handler, a test's
caplog), and a crash point reached in a worker kills the run's process too, as it would have
killed a single process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, Protocol

from guidang_io.crashpoints import PARENT_ENV
from night import forkserver
from night.context import RunContext, SourceConfig
from night.staging import ChunkOutcome, stage_chunk
from night.transferring import TransferOutcome, transfer_chunk
from night.window import Collected
from night.work import Staged, Work
from night.work_units import RunRef, collect_matters, ref_of, stage_unit, transfer_unit


class Fanout(Protocol):
    """How the chunks of one source are run: threads, worker processes, or Prefect tasks (flows/nightly.py)."""

    taper: bool  # whether a long window's last chunks are cut smaller (night/engine.tapered)
    # at most this many chunks per stage of a source (night/engine.sized_for): a Prefect night bounds
    # its task runs so; None: chunk_size alone, as in local worker processes where a chunk costs nothing
    max_chunks: int | None
    # chunks of at least this many matters (night/engine.sized_for), where each chunk has a cost of
    # its own worth spreading (a task on Dask); None: chunk_size
    min_chunk: int | None

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Collected]: ...

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]: ...

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]: ...


ChunkDone = Callable[[Sequence[Any], Any], None]  # (the chunk, its outcome): told as each chunk finishes


def staged_reporter(ctx: RunContext, source: SourceConfig) -> ChunkDone:
    return lambda c, out: ctx.progress.staged(source.name, len(c), len(out.staged))


def transferred_reporter(ctx: RunContext, source: SourceConfig) -> ChunkDone:
    return lambda c, out: ctx.progress.transferred(source.name, len(c))


class ThreadFanout:
    """Chunks over a bounded thread pool (the source's max_concurrency) in the run's own process."""

    taper = True
    max_chunks = None
    min_chunk = None

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Collected]:
        return collect_matters(ctx, source, since, until)

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]:
        return self._map(source, lambda c: stage_chunk(ctx, source, c), chunks, staged_reporter(ctx, source))

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]:
        return self._map(source, lambda c: transfer_chunk(ctx, source, c), chunks, transferred_reporter(ctx, source))

    @staticmethod
    def _map(source: SourceConfig, fn: Callable[[Any], Any], chunks: list[Any], report: ChunkDone) -> list[Any]:
        results: list[Any] = []
        if len(chunks) <= 1:
            for c in chunks:
                results.append(fn(c))
                report(c, results[-1])
            return results
        with ThreadPoolExecutor(max_workers=source.max_concurrency, thread_name_prefix="guidang") as pool:
            for c, out in zip(chunks, pool.map(fn, chunks), strict=True):  # in order, as each is done
                report(c, out)
                results.append(out)
        return results

    def pipeline(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]], carried: list[Staged],
                 number: Number) -> SliceOutcome | None:
        if len(chunks) <= 1:
            return None
        with ThreadPoolExecutor(max_workers=source.max_concurrency, thread_name_prefix="guidang") as pool:
            return pipelined(
                lambda c: pool.submit(stage_chunk, ctx, source, c),
                lambda c: pool.submit(transfer_chunk, ctx, source, c),
                source.max_concurrency, source.chunk_size, chunks, carried, number,
                staged_reporter(ctx, source), transferred_reporter(ctx, source),
            )


def in_flight(workers: int, source: SourceConfig) -> int:
    """Chunks kept going at once for `workers` local worker processes: one more than there are
    workers (within the source's max_concurrency), so a worker that finishes finds the next chunk
    already queued instead of idling while the run's process numbers the chunk it just handed back.
    Without local workers (a Dask
    cluster, whose size is not known here): the source's max_concurrency."""
    return min(workers + 1, source.max_concurrency) if workers > 1 else source.max_concurrency


class ProcessFanout:
    """Chunks in local worker processes, at most min(workers + 1, the source's max_concurrency) at once.

    A source with a single chunk runs it here, in the run's process: a small night pays for no
    worker. The pool starts with the first source that has more and serves the rest of the night."""

    taper = True
    max_chunks = None
    min_chunk = None

    def __init__(self, ctx: RunContext, workers: int) -> None:
        self.ref: RunRef = ref_of(ctx)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._listener: QueueListener | None = None
        self._pool_lock = threading.Lock()
        self._warming: threading.Thread | None = None

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Collected]:
        items = collect_matters(ctx, source, since, until)  # here: one connection pages the window
        if len(items) > source.chunk_size:
            self.warm_up()
        return items

    def run_unit(self, unit: Callable[[RunRef, str, Any], Any], ref: RunRef, source_name: str, chunk: Any) -> Any:
        """One unit for a caller in the run's process (a Prefect task on the flow's threads): in a
        worker once the pool is started or starting (a window of more than one chunk), else here,
        as `_map` runs a single chunk."""
        if self._pool is None and self._warming is None:
            return unit(ref, source_name, chunk)
        return self._executor().submit(unit, ref, source_name, chunk).result()

    def warm_up(self) -> None:
        """Fork the workers in the background while this process triages the window, so that the
        first chunks find them ready. Their server (night/forkserver.py) imports the work units
        and builds the PRONOM matcher and the XSDs once; `guidang run` starts it with the run,
        and here it is started if nobody did."""
        if self._warming is None and self._pool is None:
            self._warming = threading.Thread(target=self._start_workers, name="guidang-warm-up", daemon=True)
            self._warming.start()

    def _start_workers(self) -> None:
        try:
            pool = self._executor()
            for f in [pool.submit(_ready) for _ in range(self.workers)]:
                f.result()
        except Exception as exc:  # the first real chunk meets the same fault and reports it
            logging.getLogger("guidang").debug("worker warm-up failed: %s", exc)

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]:
        return self._map(source, stage_unit, chunks, staged_reporter(ctx, source))

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]:
        return self._map(source, transfer_unit, chunks, transferred_reporter(ctx, source))

    def _map(self, source: SourceConfig, unit: Callable[[RunRef, str, Any], Any], chunks: Sequence[Any],
             report: ChunkDone) -> list[Any]:
        if len(chunks) <= 1:
            results = []
            for c in chunks:
                results.append(unit(self.ref, source.name, c))
                report(c, results[-1])
            return results
        pool = self._executor()
        limit = self._in_flight(source)
        results: list[Any] = [None] * len(chunks)
        running: dict[Future[Any], int] = {}
        queued = iter(enumerate(chunks))
        with settled_on_failure(running):
            for i, c in queued:
                running[pool.submit(unit, self.ref, source.name, c)] = i
                if len(running) >= limit:
                    self._collect_done(running, results, chunks, report)
            while running:
                self._collect_done(running, results, chunks, report)
        return results

    def pipeline(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]], carried: list[Staged],
                 number: Number) -> SliceOutcome | None:
        if len(chunks) <= 1:
            return None  # a small source: in this process, stage by stage, as _map would
        pool = self._executor()
        return pipelined(
            lambda c: pool.submit(stage_unit, self.ref, source.name, c),
            lambda c: pool.submit(transfer_unit, self.ref, source.name, c),
            self._in_flight(source), source.chunk_size, chunks, carried, number,
            staged_reporter(ctx, source), transferred_reporter(ctx, source),
        )

    def _in_flight(self, source: SourceConfig) -> int:
        return in_flight(self.workers, source)

    @staticmethod
    def _collect_done(running: dict[Future[Any], int], results: list[Any], chunks: Sequence[Any],
                      report: ChunkDone) -> None:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for f in done:
            i = running.pop(f)
            results[i] = f.result()
            report(chunks[i], results[i])

    def _executor(self) -> ProcessPoolExecutor:
        with self._pool_lock:
            return self._open_executor()

    def _open_executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            mp = forkserver.pool_context()
            queue = mp.Queue()
            self._listener = QueueListener(queue, _Reemit())
            self._listener.start()
            level = logging.getLogger("guidang").getEffectiveLevel()
            # The forkserver keeps the environment it started with; a worker takes the run's as it is now
            # (credentials named by *_env settings are read from it), over this machine's own pipe.
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=mp, initializer=_start_worker,
                initargs=(queue, os.getpid(), level, dict(os.environ)),
            )
        return self._pool

    def close(self) -> None:
        if self._warming is not None:
            self._warming.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


class _Reemit(logging.Handler):
    """A worker's record, handled by the run process's logger of the same name."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def _ready() -> None:
    """The warm-up's task: a worker that runs it is forked and initialised."""


def _start_worker(queue: Any, parent_pid: int, level: int, environ: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(environ)
    os.environ[PARENT_ENV] = str(parent_pid)
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(queue)]
    root.setLevel(level)
    threading.Thread(target=_exit_with, args=(parent_pid,), name="guidang-run-watch", daemon=True).start()


def _exit_with(run_pid: int) -> None:
    """End this worker when the run's process is gone. A run killed outright (SIGKILL, the OOM
    killer, a crash point) cannot shut its pool down, and its idle workers would otherwise wait for
    work forever, with the forkserver and the run's stdout and stderr held open (seen: a killed
    night left three processes behind). Ending at once is what the crash order already allows."""
    forkserver.wait_for_exit(run_pid)
    os._exit(70)


Number = Callable[[list[Staged]], list[Staged]]  # night/numbering.number_staged, in the run's process


@dataclass
class SliceOutcome:
    staged: list[ChunkOutcome] = field(default_factory=list)
    transferred: list[TransferOutcome] = field(default_factory=list)


def run_slice(fanout: Fanout, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]],
              carried: list[Staged], number: Number) -> SliceOutcome:
    """Stage, number and transfer one slice of a source's window.

    A fanout that can (`pipeline`: threads, worker processes) runs it as a pipeline: a chunk is
    numbered as soon as it and every chunk before it are staged, and its transfer is queued at
    once, so workers stage later chunks while earlier ones are stored, instead of waiting at two
    barriers for the slowest chunk of each stage. 件号 are given exactly as stage by stage: the
    chunks are consecutive runs of the slice in completion order, numbered in that order. Any other
    fanout (Prefect tasks) runs the stages one after the other."""
    pipeline = getattr(fanout, "pipeline", None)
    if pipeline is not None:
        done = pipeline(ctx, source, chunks, carried, number)
        if done is not None:
            return done
    out = SliceOutcome(staged=fanout.stage(ctx, source, chunks))
    numbered = carried + [st for o in out.staged for st in _numbered(o, number)]
    out.transferred = fanout.transfer(ctx, source, _chunk(numbered, source.chunk_size))
    return out


def _numbered(outcome: ChunkOutcome, number: Number) -> list[Staged]:
    """Number a staged chunk and let its outcome go of the staged matters. What the slice's caller
    reads of a stage outcome is its summary and pending times; the staged matters (each a `Matter`,
    its documents' facts and its precheck report, some hundreds of objects) go on to transfer, and
    an outcome that held them too would keep a whole slice's of them alive in the run's process
    until the slice ends, after most of them are stored."""
    staged, outcome.staged = outcome.staged, []
    return number(staged)


def pipelined(
    submit_stage: Callable[[list[Work]], Future[ChunkOutcome]],
    submit_transfer: Callable[[list[Staged]], Future[TransferOutcome]],
    limit: int, chunk_size: int, chunks: list[list[Work]], carried: list[Staged], number: Number,
    on_staged: ChunkDone, on_transferred: ChunkDone,
) -> SliceOutcome:
    """At most `limit` chunks in flight; a numbered chunk's transfer goes before the next stage
    chunk (what is numbered is stored soonest). A failed chunk fails the slice as `_map` does:
    nothing more is submitted, the running ones finish, the exception propagates."""
    out = SliceOutcome()
    to_stage = deque(enumerate(chunks))
    to_transfer: deque[list[Staged]] = deque(_chunk(carried, chunk_size))
    finished: dict[int, ChunkOutcome] = {}
    next_to_number = 0
    running: dict[Future[Any], tuple[int | None, list[Any]]] = {}  # (a stage chunk's index or None, chunk)
    with settled_on_failure(running):
        while to_stage or to_transfer or running:
            while len(running) < limit and (to_transfer or to_stage):
                if to_transfer:
                    t = to_transfer.popleft()
                    running[submit_transfer(t)] = (None, t)
                else:
                    i, c = to_stage.popleft()
                    running[submit_stage(c)] = (i, c)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                i, c = running.pop(f)
                if i is None:
                    out.transferred.append(f.result())
                    on_transferred(c, out.transferred[-1])
                else:
                    finished[i] = f.result()
                    on_staged(c, finished[i])
            while next_to_number in finished:  # in order: chunk i after chunks 0..i-1
                staged = finished.pop(next_to_number)
                out.staged.append(staged)
                next_to_number += 1
                to_transfer.extend(_chunk(_numbered(staged, number), chunk_size))
    return out


@contextmanager
def settled_on_failure(running: dict[Future[Any], Any]) -> Iterator[None]:
    """A failed chunk fails the source: nothing more starts, the queued ones are cancelled, and the
    running ones are waited for so that they finish writing before the exception goes on."""
    try:
        yield
    except BaseException:
        for f in running:
            f.cancel()
        wait(running)
        raise


def _chunk(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def fanout_for(ctx: RunContext) -> ThreadFanout | ProcessFanout:
    """Worker processes when there is more than one to have and the night writes (a dry run's
    scratch ledger and staging live with its process); threads otherwise."""
    workers = forkserver.local_workers(ctx.settings, dry_run=ctx.dry_run)
    return ProcessFanout(ctx, workers) if workers else ThreadFanout()
