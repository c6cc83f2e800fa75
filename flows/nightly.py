"""The Prefect side: `nightly_transfer` with one subflow per source, tasks over chunks of matters.

Tasks are work units (flows/units.py): they take a `RunRef`, a source name and a chunk, all plain
values, and open what they need in the process that runs them. So the same flow runs its chunks in
threads (a ThreadPoolTaskRunner bounded by the source's `max_concurrency`, so one night cannot
overload a department's database) or on Dask (`orchestration.task_runner: dask`: a scheduler
address, or a local cluster of `dask_workers` processes). Retries sit on the network-facing tasks
(collect, transfer); staging handles a document's transient failure by leaving the matter pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import unmapped

from flows.context import RunContext, SourceConfig, SourceSummary
from flows.night import process_source, run_nightly
from flows.numbering import Staged
from flows.report import summary_markdown, summary_rows
from flows.staging import ChunkOutcome
from flows.transfer import TransferOutcome
from flows.triage import Work
from flows.units import RunRef, collect_unit, ref_of, registered, stage_unit, transfer_unit
from schemas.config import load_settings
from schemas.findings import GuidangError


class RunFailed(Exception):
    """Raised at the end of a failed night so that Prefect marks the run failed; carries the summary."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__(
            f"nightly transfer failed: {summary.get('status')}: "
            + "; ".join(s.get("error", "") for s in summary["sources"].values() if s.get("error"))
        )
        self.summary = summary


@task(name="collect", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def collect_task(ref: RunRef, source_name: str, since: datetime, until: datetime) -> list[Any]:
    return collect_unit(ref, source_name, since, until)


@task(name="stage-chunk", cache_policy=NO_CACHE)
def stage_task(ref: RunRef, source_name: str, works: list[Work]) -> ChunkOutcome:
    return stage_unit(ref, source_name, works)


@task(name="transfer-chunk", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def transfer_task(ref: RunRef, source_name: str, staged: list[Staged]) -> TransferOutcome:
    return transfer_unit(ref, source_name, staged)


class PrefectFanout:
    """Runs each stage's chunks as Prefect task runs (mapped), waiting for all before going on."""

    def __init__(self, ref: RunRef) -> None:
        self.ref = ref

    def collect(self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime) -> list[Any]:
        return collect_task(self.ref, source.name, since, until)

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]:
        return self._map(stage_task, source, chunks)

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]:
        return self._map(transfer_task, source, chunks)

    def _map(self, fn: Any, source: SourceConfig, chunks: list[Any]) -> list[Any]:
        if not chunks:
            return []
        return [f.result() for f in fn.map(unmapped(self.ref), unmapped(source.name), chunks)]


def task_runner_for(ctx: RunContext, source: SourceConfig) -> Any:
    """Threads bounded by the source's max_concurrency, or Dask (a running cluster, else a local one)."""
    o = ctx.settings.orchestration
    if o.task_runner == "dask" and not ctx.dry_run:
        from prefect_dask import DaskTaskRunner  # only a Dask night needs it

        if o.dask_address:
            return DaskTaskRunner(address=o.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": o.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=source.max_concurrency)


def _work_ref(ctx: RunContext) -> RunRef:
    """What the tasks are handed: on Dask, the configuration's path only (workers read it and their
    own environment: no password crosses the cluster); in this process's threads, the settings too."""
    ref = ref_of(ctx)
    if ctx.settings.orchestration.task_runner == "dask" and not ctx.dry_run:
        if ref.config is None:
            raise GuidangError("a Dask night needs its settings read from a file (workers read it themselves)")
        ref = ref.for_cluster()
    return ref


@flow(name="transfer-source")
def transfer_source(run_id: str, source_name: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """One source of a night. Its parameters are plain values (what the server records and shows);
    the night's open context is found by its run id in this process (flows/units.py), and nothing
    live is captured by the flow object, which a Dask task runner pickles with every task."""
    ctx = registered(run_id)
    summary = process_source(ctx, ctx.settings.source(source_name), since=since, until=until,
                             fanout=PrefectFanout(_work_ref(ctx)))
    return {"counts": summary.counts(), "reasons": dict(summary.reasons), "bytes": summary.bytes}


def _run_source_subflow(
    ctx: RunContext, source: SourceConfig, since: datetime | None, until: datetime | None
) -> SourceSummary:
    """One subflow run per source, under the source's task runner (threads bounded by its
    max_concurrency, or Dask)."""
    sub = transfer_source.with_options(flow_run_name=f"source-{source.name}", task_runner=task_runner_for(ctx, source))
    out = sub(ctx.run_id, source.name, since, until)
    summary = SourceSummary(**out["counts"], bytes=out["bytes"])
    summary.reasons.update(out["reasons"])
    return summary


@flow(name="nightly_transfer", flow_run_name="nightly-{config}")
def nightly_transfer(
    config: str = "guidang.yaml",
    sources: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Archive every matter completed since each source's watermark (or in [since, until] as a backfill)."""
    settings = load_settings(config)
    summary = run_nightly(
        settings, sources=sources, since=since, until=until, dry_run=dry_run, run_source=_run_source_subflow, now=as_of
    )
    create_table_artifact(
        key="transfer-summary",
        table=summary_rows(summary),
        description="Matters per source: collected, archived, quarantined, not in scope",
    )
    create_markdown_artifact(
        key="transfer-report", markdown=summary_markdown(summary), description="Nightly transfer report"
    )
    if summary["status"] != "completed":
        raise RunFailed(summary)
    return summary
