"""The Prefect side: `nightly_transfer` with one subflow per source, tasks over chunks of matters.

Tasks are work units (night/work_units.py): they take a `RunRef`, a source name and a chunk, all plain
values, and open what they need in the process that runs them. So the same flow runs its chunks in
threads (a ThreadPoolTaskRunner bounded by the source's `max_concurrency`, so one night cannot
overload a department's database) or on Dask (`orchestration.task_runner: dask`: a scheduler
address, or one local cluster of `dask_workers` processes that all the night's sources share).
Retries sit on the network-facing tasks (collect, transfer); staging handles a document's transient
failure by leaving the matter pending.

A chunk goes to its task inside a `Chunk`, which both orchestrators take as one opaque value: Prefect
does not walk it looking for futures to link (its runner and its task engine would each visit every
matter's documents and facts), and Dask takes the chunk's own token as part of the task's key instead
of hashing every matter in it. The walks and the hashing would run in the flow's process, on the
thread that submits the next chunk, under the GIL the night's numbering needs.
"""

import logging
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any
from uuid import uuid4

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Failed

from flows import prefect_ops
from flows.runners import night_cluster, task_runner_for
from night import forkserver
from night import progress as night_progress
from night.context import RunContext, SourceConfig, SourceSummary
from night.engine import process_source, run_nightly, source_window
from night.fanout import (
    ChunkDone,
    Number,
    SliceOutcome,
    in_flight,
    pipelined,
    staged_reporter,
    transferred_reporter,
)
from night.report import summary_rows
from night.staging import ChunkOutcome
from night.transferring import TransferOutcome
from night.work import Staged, Work
from night.work_units import RunRef, collect_unit, ref_of, registered, run_unit, stage_unit, transfer_unit, warm_up
from schemas.config import Settings, load_settings
from schemas.findings import GuidangError
from schemas.model import mask_text

log = logging.getLogger("guidang")


class Chunk:
    """A chunk of matters (Work or Staged) as one task argument that Prefect and Dask leave whole
    (module docstring). `token` names this chunk's task run uniquely: Dask reads it through
    `__dask_tokenize__` where it would otherwise hash the matters themselves.

    It travels as one pickled blob, made once by the C pickler and unpickled only where `items` is
    read (the task's process). On Dask the scheduler unpickles every task it is handed and pickles it
    again for the worker, and the client pickles with cloudpickle, whose hook runs for every object:
    a chunk of matter objects cost the flow's process, which also numbers the night, more CPU than
    the chunk's own work in a worker; a blob costs it a copy of bytes."""

    __slots__ = ("_blob", "_items", "size", "token")

    def __init__(self, items: Sequence[Any], token: str | None = None) -> None:
        self._items: list[Any] | None = list(items)
        self._blob: bytes | None = None
        self.size = len(self._items)
        self.token = token or uuid4().hex

    @classmethod
    def _from_blob(cls, blob: bytes, size: int, token: str) -> "Chunk":
        chunk = cls.__new__(cls)
        chunk._items, chunk._blob, chunk.size, chunk.token = None, blob, size, token
        return chunk

    @property
    def items(self) -> list[Any]:
        if self._items is None:
            self._items = pickle.loads(self._blob or b"")
            self._blob = None  # the matters are held once, as objects, from here on
        return self._items

    def __dask_tokenize__(self) -> str:
        return self.token

    def __reduce__(self) -> tuple[Any, ...]:
        if self._blob is None:
            self._blob = pickle.dumps(self._items, protocol=pickle.HIGHEST_PROTOCOL)
            self._items = None  # submitted: the flow's process keeps the bytes, not the matters twice
        return (Chunk._from_blob, (self._blob, self.size, self.token))

    def __len__(self) -> int:
        return self.size


class RunFailed(Exception):
    """Raised at the end of a failed night so that Prefect marks the run failed; carries the summary."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__(
            f"nightly transfer failed: {summary.get('status')}: "
            + "; ".join(summary.get("failures") or [f"{n}: {s['error']}" for n, s in summary["sources"].items()
                                                    if s.get("error")])
        )
        self.summary = summary


@task(name="collect", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def collect_task(ref: RunRef, source_name: str, since: datetime, until: datetime) -> list[Any]:
    return collect_unit(ref, source_name, since, until)


@task(name="stage-chunk", cache_policy=NO_CACHE)
def stage_task(ref: RunRef, source_name: str, works: Chunk) -> ChunkOutcome:
    return run_unit(stage_unit, ref, source_name, works.items)


@task(name="transfer-chunk", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def transfer_task(ref: RunRef, source_name: str, staged: Chunk) -> TransferOutcome:
    return run_unit(transfer_unit, ref, source_name, staged.items)


# A task on Dask costs Prefect about a quarter of a CPU second besides its chunk's work (the
# settings serialised in the flow's process and rebuilt on the worker, a client, its states on the
# server); at 50 matters of 100 KB that is a sixth of the chunk's own work. On threads it is not paid.
DASK_MIN_CHUNK = 100


class PrefectFanout:
    """Runs each stage's chunks as Prefect task runs, each named after its chunk's range
    (`stage-tzxm[51-100 of 320]`), pipelined as the local night is (night/fanout.pipelined: a
    chunk is numbered once it and those before it are staged, and its transfer goes at once),
    advancing the progress as each finishes. On the flow's threads a task hands its chunk to the
    night's local worker processes (night/work_units.run_unit); on Dask it runs on the Dask worker."""

    # Every task run costs the Prefect server CPU, on the cores the night uses; the quarter-size
    # chunks that shorten a local night's tail would add task runs, so a Prefect night's chunks stay
    # whole.
    taper = False

    def __init__(self, ref: RunRef, progress: prefect_ops.Progress | None = None, *, workers: int = 0,
                 threads: bool = True, max_chunks: int | None = None) -> None:
        self.ref = ref
        self.max_chunks = max_chunks  # orchestration.max_chunks: the task runs per stage of a source
        self.progress = progress
        self.workers = workers  # the local worker processes the tasks hand chunks to (0: none, as on Dask)
        self.threads = threads  # the flow's own task runner (else Dask)
        self.min_chunk = None if threads else DASK_MIN_CHUNK

    @staticmethod
    def _arg(chunk: list[Any]) -> Chunk:
        """The chunk as a task's argument (module docstring)."""
        return Chunk(chunk)

    def collect(self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime) -> list[Any]:
        items = collect_task.with_options(task_run_name=f"collect-{source.name}")(self.ref, source.name, since, until)
        self._advance(source, "collect", 1, 1)
        if len(items) > source.chunk_size:
            warm_up(self.ref.run_id)  # the workers start while the window is triaged
        return items

    def pipeline(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]], carried: list[Staged],
                 number: Number) -> SliceOutcome | None:
        if len(chunks) <= 1:
            return None  # a small source: stage by stage, as _map would
        limit = in_flight(self.workers, source)
        total = sum(len(c) for c in chunks)
        counts = {"stage": [1, 0], "transfer": [1, 0]}  # per stage: the next chunk's first position, matters done

        def submit(fn: Any, stage: str, waiter: ThreadPoolExecutor) -> Callable[[list[Any]], Future[Any]]:
            def go(c: list[Any]) -> Future[Any]:
                first = counts[stage][0]
                counts[stage][0] += len(c)
                name = f"{stage}-{source.name}[{first}-{first + len(c) - 1} of {total}]"
                task_run = fn.with_options(task_run_name=name).submit(self.ref, source.name, self._arg(c))
                return waiter.submit(task_run.result)
            return go

        def reporter(stage: str, report: ChunkDone) -> ChunkDone:
            def done(c: Sequence[Any], out: Any) -> None:
                report(c, out)
                counts[stage][1] += len(c)
                self._advance(source, stage, counts[stage][1], total)
            return done

        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="guidang-task") as waiter:
            return pipelined(submit(stage_task, "stage", waiter), submit(transfer_task, "transfer", waiter),
                             limit, source.chunk_size, chunks, carried, number,
                             reporter("stage", staged_reporter(ctx, source)),
                             reporter("transfer", transferred_reporter(ctx, source)))

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]:
        return self._map(stage_task, "stage", source, chunks, staged_reporter(ctx, source))

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]:
        return self._map(transfer_task, "transfer", source, chunks, transferred_reporter(ctx, source))

    def _map(self, fn: Any, stage: str, source: SourceConfig, chunks: list[Any], report: ChunkDone) -> list[Any]:
        total = sum(len(c) for c in chunks)
        futures, first = [], 1
        for c in chunks:
            name = f"{stage}-{source.name}[{first}-{first + len(c) - 1} of {total}]"
            futures.append(fn.with_options(task_run_name=name).submit(self.ref, source.name, self._arg(c)))
            first += len(c)
        results = []
        for i, f in enumerate(futures, 1):
            results.append(f.result())
            report(chunks[i - 1], results[-1])
            self._advance(source, stage, i, len(futures))
        return results

    def _advance(self, source: SourceConfig, stage: str, finished: int, total: int) -> None:
        if self.progress is not None:
            self.progress.advance(source.name, stage, finished, total)


def _work_ref(ctx: RunContext) -> RunRef:
    """What the tasks are handed: on Dask, the configuration's path only (workers read it and their
    own environment: no password crosses the cluster); in this process's threads, the settings too."""
    ref = ref_of(ctx)
    if ctx.settings.orchestration.task_runner == "dask" and not ctx.dry_run:
        if ref.config is None:
            raise GuidangError("a Dask night needs its settings read from a file (workers read it themselves)")
        ref = ref.for_cluster()
    return ref


def _fanout(ctx: RunContext) -> PrefectFanout:
    """The night's tasks; on the flow's threads they hand their chunks to the local workers the
    night has (forkserver.local_workers)."""
    threads = ctx.settings.orchestration.task_runner == "threads"
    workers = forkserver.local_workers(ctx.settings, dry_run=ctx.dry_run) if threads else 0
    return PrefectFanout(_work_ref(ctx), _PROGRESS.get(ctx.run_id), workers=workers, threads=threads,
                         max_chunks=ctx.settings.orchestration.max_chunks)


_PROGRESS: dict[str, prefect_ops.Progress] = {}  # the open night's progress artifact, by run id, in this process


@flow(name="transfer-source")
def transfer_source(run_id: str, source_name: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """One source of a night. Its parameters are plain values (what the server records and shows);
    the night's open context is found by its run id in this process (night/work_units.py), and nothing
    live is captured by the flow object, which a Dask task runner pickles with every task."""
    ctx = registered(run_id)
    summary = process_source(ctx, ctx.settings.source(source_name), since=since, until=until,
                             fanout=_fanout(ctx))
    return {"counts": summary.counts(), "reasons": dict(summary.reasons), "bytes": summary.bytes,
            "error": summary.error}


class SourceSubflows:
    """`run_source` for run_nightly: one subflow run per source, named `source-<name>`, under the
    source's task runner (threads bounded by its max_concurrency, or Dask). Keeps each source's
    window for the report and advances the night's progress."""

    def __init__(self, progress: prefect_ops.Progress | None = None, dask_address: str | None = None) -> None:
        self.progress = progress
        self.dask_address = dask_address  # the night's one Dask cluster (night_cluster), shared by its sources
        self.windows: dict[str, tuple[datetime, datetime, bool]] = {}

    def __call__(self, ctx: RunContext, source: SourceConfig, since: datetime | None,
                 until: datetime | None) -> SourceSummary:
        self.windows[source.name] = source_window(ctx, source, since=since, until=until, now=ctx.now)
        if self.progress is not None:
            _PROGRESS[ctx.run_id] = self.progress
        try:
            sub = transfer_source.with_options(flow_run_name=f"source-{source.name}",
                                               task_runner=task_runner_for(ctx, source, self.dask_address))
            out = sub(ctx.run_id, source.name, since, until)
        finally:
            _PROGRESS.pop(ctx.run_id, None)
        if self.progress is not None:
            self.progress.finish(source.name)
        summary = SourceSummary(**out["counts"], bytes=out["bytes"], error=out.get("error"))
        summary.reasons.update(out["reasons"])
        return summary


def run_night_flow(config: str | None, *, sources: list[str] | None, since: datetime | None,
                   until: datetime | None, dry_run: bool, as_of: datetime | None) -> dict[str, Any]:
    """The body of `nightly_transfer` and `backfill_transfer`: the night, then what the server is told
    (artifacts, events), then the run's state: Failed unless the night completed."""
    with prefect_ops.guidang_logs_to_server():
        return _night(config, sources=sources, since=since, until=until, dry_run=dry_run, as_of=as_of)


def _night(config: str | None, *, sources: list[str] | None, since: datetime | None,
           until: datetime | None, dry_run: bool, as_of: datetime | None) -> dict[str, Any]:
    name = flow_run.name or "night"
    try:
        settings = load_settings(prefect_ops.config_path(config))
        progress = prefect_ops.Progress(list(sources) if sources else [s.name for s in settings.sources])
        with night_cluster(settings, dry_run=dry_run) as dask_address:
            subflows = SourceSubflows(progress, dask_address)
            summary = run_nightly(settings, sources=sources, since=since, until=until, dry_run=dry_run,
                                  run_source=subflows, now=as_of, progress=night_progress.listener(),
                                  local_workers=dask_address is None)
    except Exception as exc:  # the night could not start or was cut short: say so on the server too
        message = mask_text(f"{exc.__class__.__name__}: {exc}")
        log.error("night %s failed: %s", name, message)
        prefect_ops.emit_night(None, name, error=message)
        if not isinstance(exc, GuidangError):
            raise  # a bug: its traceback is what a developer needs
        log.debug("night %s failed", name, exc_info=True)
        return Failed(message=message)  # expected (a lock held, a ledger down): one line, no traceback
    publish(settings, summary, subflows.windows, name)
    if summary["status"] != "completed":
        failed = RunFailed(summary)
        log.error("night %s failed: %s", name, mask_text(str(failed)))
        # a Failed state, not a raise: the run is Failed on the server with the summary as its
        # result, and the worker's log has the night's error lines, not the engine's traceback
        return Failed(message=mask_text(str(failed)), data=summary)
    return summary


def publish(settings: Settings, summary: dict[str, Any], windows: dict[str, tuple[datetime, datetime, bool]],
            name: str) -> None:
    """The night's artifacts and events. A server that refuses one of them loses that artifact or
    event, never the night (the ledger already holds it): so each failure is logged, not raised."""
    held = summary["totals"].get("quarantined", 0)
    if held:  # in the night's own logs too: each matter's warning is in its source's subflow
        reasons = ", ".join(f"{code} × {n}" for code, n in summary.get("quarantine_reasons", {}).items())
        log.warning("%s: %d matter(s) quarantined (%s); see guidang quarantine list", name, held, reasons)
    steps: list[tuple[str, Any]] = [
        ("summary table", lambda: create_table_artifact(
            key="transfer-summary", table=summary_rows(summary),
            description="Matters per source: collected, archived, quarantined, not in scope")),
        ("report", lambda: create_markdown_artifact(
            key="transfer-report", markdown=prefect_ops.report_markdown(summary, windows, settings.timezone),
            description="Nightly transfer report: window, bytes, DA/T 93 batches, ledger chain head")),
    ]
    if not summary.get("dry_run"):
        steps += [
            ("agency table", lambda: create_table_artifact(
                key="transfer-by-agency", table=prefect_ops.agency_rows(settings, summary["run_id"]) or [{}],
                description="Per 实施机构 (agency): packages archived, bytes, matters quarantined")),
            ("quarantine events", lambda: prefect_ops.emit_quarantined(settings, summary["run_id"], name)),
        ]
    steps.append(("night event", lambda: prefect_ops.emit_night(summary, name)))
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            log.error("night %s: %s not sent to the Prefect server: %s", name, what, mask_text(str(exc)))


@flow(name="nightly_transfer", flow_run_name=prefect_ops.night_run_name)
def nightly_transfer(
    config: str | None = None,
    sources: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Archive every matter completed since each source's watermark (or in [since, until] as a backfill).
    `config`: guidang.yaml's path (else GUIDANG_CONFIG, else ./guidang.yaml)."""
    return run_night_flow(config, sources=sources, since=since, until=until, dry_run=dry_run, as_of=as_of)


@flow(name="backfill_transfer", flow_run_name=prefect_ops.night_run_name)
def backfill_transfer(
    since: datetime,
    until: datetime,
    sources: list[str] | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """Archive what was completed in [since, until] again (a backfill: the watermark does not move)."""
    if until <= since:
        raise GuidangError(f"backfill: until ({until.isoformat()}) must be after since ({since.isoformat()})")
    return run_night_flow(config, sources=sources, since=since, until=until, dry_run=False, as_of=None)
