"""One nightly transfer as plain functions: the order of the stages, written once.

The Prefect flow (flows/nightly.py) and the plain runner both call `process_source`, handing it a
`Fanout` that runs chunks of matters (Prefect tasks under a bounded runner, or a thread pool); so
the stage order, the crash-safety order and the counting exist in one place. Each stage is its own
module, and each imports only the ones before it: night/triage.py, night/staging.py,
night/numbering.py, night/transferring.py, night/batches.py, over the types they hand each other
(night/work.py) and quarantine (night/quarantine.py).

Crash-safety order for one matter (docs/architecture.md, "The crash order"):
  stage (fetch + fixity + PDF checks, in a scratch folder)       nothing durable yet
  number (one ledger transaction: 件号 + matter row `numbered`)    the recovery point
  finalize (元数据, manifests, 检测报告; bytes depend only on the ledger row)
  put every file (each verified by read-back), then the completion marker
  ledger: `verified` (one transaction)
A re-run finds `numbered` rows and finishes them by re-staging from the stored record: the same
bytes, the same keys, so every put is a no-op or a completion, never a second copy.

For one source, `process_source` first finishes what a crashed run left numbered and retries
归档回传, then collects, triages, stages, numbers and transfers the window, and moves the watermark
last, never past a matter that is not in an end state. `run_nightly` writes the DA/T 93 batches
after every source and closes the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from guidang_io.crashpoints import crashpoint
from ledger import queries, store
from night import work_units
from night.batches import write_transfer_batches
from night.context import RunContext, SourceConfig, SourceSummary, close_run, open_run
from night.enablement import close_reached, waiting_window, windows_to_collect
from night.fanout import Fanout, ProcessFanout, ThreadFanout, fanout_for, run_slice
from night.keyless import settle_rows_without_id
from night.numbering import number_staged, resume_unfinished
from night.progress import NightCallback, NightProgress
from night.replica_catch_up import catch_up_replicas
from night.transferring import acknowledge
from night.triage import triage
from night.window import spooled
from night.work import Staged, Work
from packager.package import clear_retired
from schemas.config import Settings
from schemas.findings import GuidangError
from schemas.model import mask_text

log = logging.getLogger("guidang")

RunSource = Callable[[RunContext, SourceConfig, datetime | None, datetime | None], SourceSummary]


def run_nightly(
    settings: Settings,
    *,
    sources: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    run_source: RunSource | None = None,
    now: datetime | None = None,
    progress: NightCallback | None = None,
    local_workers: bool = True,
) -> dict[str, Any]:
    """One night over the selected sources (all by default); returns the run summary.

    A source that fails (unreachable after retries, repository or ledger unwritable) is reported in
    the summary with its error and marks the run failed; the other sources still run.
    `local_workers=False` when the chunks run elsewhere (a Dask cluster): no worker process of this
    machine is started for them, which would only take cores and memory from the cluster's.
    """
    selected = [settings.source(n) for n in sources] if sources else list(settings.sources)
    parameters = {
        "sources": [s.name for s in selected],
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "dry_run": dry_run,
    }
    ctx = open_run(settings, parameters=parameters, dry_run=dry_run, now=now, sources=parameters["sources"])
    ctx.progress = NightProgress(progress, dry_run=dry_run)  # each chunk and source reported to `progress`
    if settings.night_deadline_minutes is not None:
        ctx.deadline = time.monotonic() + settings.night_deadline_minutes * 60
    fanout = fanout_for(ctx) if local_workers else ThreadFanout()
    # work units run in this process's threads find the open night, and its worker processes if any
    work_units.register(ctx, fanout if isinstance(fanout, ProcessFanout) else None)
    run_source = run_source or (lambda c, src, a, b: process_source(c, src, since=a, until=b, fanout=fanout))
    summaries: dict[str, SourceSummary] = {}
    failed: list[str] = []
    batches: list[str] = []
    closed = False
    try:
        if not dry_run:
            catch_up_replicas(ctx)  # what a copy missed on an earlier night, before tonight's puts
        for src in selected:
            try:
                summaries[src.name] = run_source(ctx, src, since, until)
                if not dry_run and not summaries[src.name].error:
                    settle_rows_without_id(ctx, src.name, summaries[src.name])
            except Exception as exc:  # a run_source that raised (a subflow): the source fails, not the night
                message = mask_text(f"{exc.__class__.__name__}: {exc}")
                log.error("source %s failed: %s", src.name, message, exc_info=not isinstance(exc, GuidangError))
                summaries[src.name] = SourceSummary(error=message)
            if summaries[src.name].error:
                failed.append(mask_text(f"{src.name}: {summaries[src.name].error}"))
            ctx.progress.finished(src.name)
        if not dry_run:
            ctx.clearing = clear_retired(ctx.staging_root)  # no matter is retired from here on
            try:
                with ctx.guarded([n for n, s in summaries.items() if not s.error]):
                    batches = write_transfer_batches(ctx)
            except GuidangError as exc:
                message = mask_text(f"transfer batch 移交批次 (DA/T 93): {exc}")
                log.error("step failed: %s", message)
                failed.append(message)
        crashpoint("before-run-closed")
        result = close_run(ctx, summaries, failed=failed)
        closed = True
    finally:
        close = getattr(fanout, "close", None)
        if close is not None:
            close()
        work_units.forget(ctx.run_id)
        if not closed:  # interrupted, or a fault outside every source: the run is failed, never left running
            _close_failed(ctx, summaries, failed)
    result["transfer_batches"] = batches
    return result


def _close_failed(ctx: RunContext, summaries: dict[str, SourceSummary], failed: list[str]) -> None:
    """Close a run that did not reach its end; the exception that stopped it goes on propagating."""
    try:
        close_run(ctx, summaries, failed=failed or ["the run stopped before it was finished"])
    except Exception as exc:  # the ledger itself is down: say so, and let the first error speak
        log.error("run %s could not be closed in the ledger: %s", ctx.run_id, mask_text(str(exc)))


def source_window(
    ctx: RunContext, source: SourceConfig, *, since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime, bool]:
    """(since, until, is_backfill) of `source`'s next run, read from the ledger's watermark."""
    with ctx.ledger.read() as s:
        watermark = queries.get_watermark(s, source.name)
    return window_after(source, watermark, since=since, until=until, now=now)


def window_after(
    source: SourceConfig, watermark: datetime | None, *, since: datetime | None, until: datetime | None,
    now: datetime,
) -> tuple[datetime, datetime, bool]:
    """(since, until, is_backfill): the window after `watermark`, less the source's overlap, or the
    one asked for. A backfill window never moves the watermark."""
    if since is not None:
        return since, until or now, True
    start = (watermark - timedelta(minutes=source.overlap_minutes)) if watermark else source.initial_since
    return start, until or now, False


def process_source(
    ctx: RunContext,
    source: SourceConfig,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    fanout: Fanout | None = None,
    now: datetime | None = None,
) -> SourceSummary:
    """Collect, appraise, stage, number, transfer and verify every matter of one source's window.

    A source that fails (unreachable after retries, the repository or the ledger unwritable, its
    lock lost) returns its summary with `error` set and one ERROR line logged: the counts of what
    it did before it failed stay true, and the night goes on with the next source."""
    fanout = fanout or ThreadFanout()
    summary = SourceSummary()
    try:
        ctx.check_deadline()
        with ctx.guarded([source.name]):
            _process_source(ctx, source, summary, since=since, until=until, fanout=fanout, now=now or ctx.now)
    except Exception as exc:  # a bug in one source's path fails that source, not the night
        summary.error = mask_text(f"{exc.__class__.__name__}: {exc}")
        expected = isinstance(exc, GuidangError)  # a named fault: its line says it all; a bug: its traceback
        log.error("source %s failed: %s", source.name, summary.error, exc_info=not expected)
        if expected:
            log.debug("source %s failed", source.name, exc_info=True)
        return summary
    if summary.store_errors:  # packages the store did not take: pending, and the source failed
        summary.error = f"the repository did not store {summary.pending} package(s): " + "; ".join(summary.store_errors)
        log.error("source %s failed: %s", source.name, summary.error)
    if summary.unacknowledged:
        log.error("source %s: acknowledgement 归档回传 of %d matter(s) failed (the next night retries): %s",
                  source.name, summary.unacknowledged, summary.acknowledge_error)
    return summary


def _process_source(ctx: RunContext, source: SourceConfig, summary: SourceSummary, *, since: datetime | None,
                    until: datetime | None, fanout: Fanout, now: datetime) -> None:
    connector = ctx.connector(source)  # opened once, before anything of the source reaches the ledger

    # 1. what earlier nights left, in one read: where the last window ended, rows a crashed run
    # numbered but did not verify (finished before anything new is numbered), and verified rows the
    # source was not told of
    with ctx.ledger.read() as s:
        watermark = queries.get_watermark(s, source.name)
        unfinished = [] if ctx.dry_run else list(queries.unfinished(s, source.name))
        unacknowledged = [] if ctx.dry_run else list(queries.unacknowledged(s, source.name))
    start, end, backfill = window_after(source, watermark, since=since, until=until, now=now)
    resumed: list[Staged] = []
    if not ctx.dry_run:
        resumed = resume_unfinished(ctx, connector, unfinished, summary)
        acknowledge(ctx, connector, unacknowledged, summary)  # 归档回传, retried

    # 2. collect the window, and the window of matters that waited for a unit now enabled
    items = []
    for since_, until_ in windows_to_collect(start, end, waiting_window(ctx, source)):
        items.extend(spooled(fanout.collect(ctx, source, since_, until_), ctx.spool()))
    summary.collected = len(items)
    crashpoint("collected")

    # 3. decide per matter: skip, quarantine, or work on it; 4.–6. the stages
    work = triage(ctx, source, items, summary)
    ctx.progress.triaged(source.name, collected=summary.collected, to_work=len(work))
    del items  # the work holds what is still needed; the rest of the window can go
    pending_times = work_through(ctx, source, work, summary, fanout, resumed=resumed)
    if ctx.dry_run:
        return
    close_reached(ctx, source)

    # 7. the watermark: never ahead of a matter that is not in an end state
    if not backfill:
        crashpoint("before-watermark")
        new_mark = (min(pending_times) - timedelta(microseconds=1)) if pending_times else end
        with ctx.ledger.transaction() as s:
            store.set_watermark(s, source.name, max(new_mark, start), ctx.run_id)
        crashpoint("watermark")


SLICE_CHUNKS = 4  # a slice of the window: this many rounds of chunks in flight


def work_through(
    ctx: RunContext,
    source: SourceConfig,
    work: list[Work],
    summary: SourceSummary,
    fanout: Fanout,
    *,
    resumed: Sequence[Staged] = (),
) -> list[datetime]:
    """Appraise + stage (fanned out), number (in order), finalize + transfer + verify (fanned out,
    pipelined where the fanout can: night/fanout.run_slice), one slice of the window at a time, so
    that what a night holds in memory (staged matters and their documents' facts) does not grow
    with the number of matters in its window.

    The work is taken in completion order (completion time, then 办件编号), the order 件号 are
    given in, so slicing does not change which matter gets which number.
    Returns the updated_at of matters left pending by transient faults, which hold the watermark back.
    """
    ordered = sorted(work, key=lambda w: (w.packed.completed_at, w.packed.project_id))
    source = sized_for(source, len(ordered), fanout.max_chunks, fanout.min_chunk)
    size = source.chunk_size * source.max_concurrency * SLICE_CHUNKS
    pending_times: list[datetime] = []
    carried = list(resumed)  # numbered by a crashed run: transferred with the first slice
    for start in range(0, max(len(ordered), 1), size):
        ctx.check_deadline()  # between slices: what is numbered is finished by the next night
        part = ordered[start : start + size]
        if ctx.dry_run:
            for out in fanout.stage(ctx, source, chunk(part, source.chunk_size)):
                summary.add(out.summary)
                summary.archived += len(out.staged)
                pending_times.extend(out.pending_updated_at)
            continue
        last = start + size >= len(ordered)
        cut = tapered if last and fanout.taper else chunk
        done = run_slice(fanout, ctx, source, cut(part, source.chunk_size), carried,
                         partial(number_staged, ctx))
        carried = []
        for outcome in [*done.staged, *done.transferred]:
            summary.add(outcome.summary)
            pending_times.extend(outcome.pending_updated_at)
    return pending_times


def sized_for(source: SourceConfig, matters: int, max_chunks: int | None,
              min_chunk: int | None = None) -> SourceConfig:
    """The source with chunks large enough that `matters` make at most `max_chunks` per stage: on
    Prefect each chunk is a task run, which costs the server the same whatever its size, so a long
    window in small chunks would make the server's share of the night grow with its matters. And at
    least `min_chunk` matters a chunk where the fanout's chunks have a fixed cost of their own."""
    size = max(source.chunk_size, min_chunk or 0)
    if max_chunks is not None and matters > size * max_chunks:
        size = -(-matters // max_chunks)
    return source if size == source.chunk_size else source.model_copy(update={"chunk_size": size})


def chunk(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


TAPER = 4  # the window's last two chunks are cut into pieces this many times smaller


def tapered(items: Sequence[Any], size: int) -> list[list[Any]]:
    """`chunk`, with the last 2 x `size` items of a window longer than 3 x `size` in chunks of
    size / TAPER: the end of a window is where one worker stores the last chunk while the others
    have nothing left to do, and a smaller last chunk shortens that tail. A shorter window is
    chunked by `chunk`: a night of one chunk still runs in the run's own process, with no worker to
    start."""
    if len(items) <= 3 * size:
        return chunk(items, size)
    cut = len(items) - 2 * size
    cut -= cut % size  # the chunks before the tail stay exactly as `chunk` makes them
    return chunk(items[:cut], size) + chunk(items[cut:], max(1, -(-size // TAPER)))
