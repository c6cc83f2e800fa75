"""How the chunks of one source are run: threads in the run's process, or local worker processes.

The stage order is flows/night.py's; a `Fanout` only decides where each chunk (a work unit,
flows/units.py) runs. Threads share the run's open context and suit small nights and the Prefect
flow; worker processes (`orchestration.workers`, one per core by default) are what makes a night
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
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from datetime import datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, Protocol

from flows.context import RunContext, SourceConfig
from flows.numbering import Staged
from flows.staging import ChunkOutcome, stage_chunk
from flows.transfer import TransferOutcome, transfer_chunk
from flows.triage import Work
from flows.units import RunRef, collect_matters, ref_of, stage_unit, transfer_unit
from schemas.crashpoints import PARENT_ENV
from schemas.model import InvalidMatter, Matter


class Fanout(Protocol):
    """How the chunks of one source are run: threads, worker processes, or Prefect tasks (flows/nightly.py)."""

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Matter | InvalidMatter]: ...

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]: ...

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]: ...


ChunkDone = Callable[[Sequence[Any], Any], None]  # (the chunk, its outcome): told as each chunk finishes


def staged_reporter(ctx: RunContext, source: SourceConfig) -> ChunkDone:
    return lambda c, out: ctx.progress.staged(source.name, len(c), len(out.staged))


def transferred_reporter(ctx: RunContext, source: SourceConfig) -> ChunkDone:
    return lambda c, out: ctx.progress.transferred(source.name, len(c))


class ThreadFanout:
    """Chunks over a bounded thread pool (the source's max_concurrency) in the run's own process."""

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Matter | InvalidMatter]:
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


def worker_count(ctx: RunContext) -> int:
    """`orchestration.workers`, 0 meaning one per CPU core this process may use."""
    wanted = ctx.settings.orchestration.workers
    if wanted:
        return wanted
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ProcessFanout:
    """Chunks in local worker processes, at most min(workers, the source's max_concurrency) at once.

    A source with a single chunk runs it here, in the run's process: a small night pays for no
    worker. The pool starts with the first source that has more and serves the rest of the night."""

    def __init__(self, ctx: RunContext, workers: int) -> None:
        self.ref: RunRef = ref_of(ctx)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._listener: QueueListener | None = None

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Matter | InvalidMatter]:
        return collect_matters(ctx, source, since, until)  # here: one connection pages the window

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
        limit = min(self.workers, source.max_concurrency)
        results: list[Any] = [None] * len(chunks)
        running: dict[Future[Any], int] = {}
        queued = iter(enumerate(chunks))
        try:
            for i, c in queued:
                running[pool.submit(unit, self.ref, source.name, c)] = i
                if len(running) >= limit:
                    self._collect_done(running, results, chunks, report)
            while running:
                self._collect_done(running, results, chunks, report)
        except BaseException:
            for f in running:
                f.cancel()
            wait(running)  # a failed chunk fails the source; let the others finish writing first
            raise
        return results

    @staticmethod
    def _collect_done(running: dict[Future[Any], int], results: list[Any], chunks: Sequence[Any],
                      report: ChunkDone) -> None:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for f in done:
            i = running.pop(f)
            results[i] = f.result()
            report(chunks[i], results[i])

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            mp = multiprocessing.get_context("forkserver")
            mp.set_forkserver_preload(["flows.worker_preload"])
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


def _start_worker(queue: Any, parent_pid: int, level: int, environ: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(environ)
    os.environ[PARENT_ENV] = str(parent_pid)
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(queue)]
    root.setLevel(level)


def fanout_for(ctx: RunContext) -> ThreadFanout | ProcessFanout:
    """Worker processes when there is more than one to have and the night writes (a dry run's
    scratch ledger and staging live with its process); threads otherwise."""
    workers = worker_count(ctx)
    if workers > 1 and not ctx.dry_run:
        return ProcessFanout(ctx, workers)
    return ThreadFanout()
