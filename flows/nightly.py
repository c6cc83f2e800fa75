"""The Prefect side: `nightly_transfer` with one subflow per source, tasks over chunks of matters.

Tasks only wrap the plain stages (flows/night.py and the stage modules it runs). Retries sit on the
network-facing tasks (collect, transfer); staging handles a document's transient failure by leaving
the matter pending.
Each source's subflow runs its chunks under a ThreadPoolTaskRunner bounded by the source's
`max_concurrency`, so one night cannot overload a department's database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote, unmapped

from flows.context import RunContext, SourceConfig, SourceSummary
from flows.night import collect_matters, process_source, run_nightly
from flows.numbering import Staged
from flows.report import summary_markdown, summary_rows
from flows.staging import ChunkOutcome, stage_chunk
from flows.transfer import TransferOutcome, transfer_chunk
from flows.triage import Work
from schemas.config import load_settings


class RunFailed(Exception):
    """Raised at the end of a failed night so that Prefect marks the run failed; carries the summary."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__(
            f"nightly transfer failed: {summary.get('status')}: "
            + "; ".join(s.get("error", "") for s in summary["sources"].values() if s.get("error"))
        )
        self.summary = summary


@task(name="collect", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def collect_task(ctx: RunContext, source: SourceConfig, since: datetime, until: datetime) -> list[Any]:
    return collect_matters(ctx, source, since, until)


@task(name="stage-chunk", cache_policy=NO_CACHE)
def stage_task(ctx: RunContext, source: SourceConfig, works: list[Work]) -> ChunkOutcome:
    return stage_chunk(ctx, source, works)


@task(name="transfer-chunk", retries=2, retry_delay_seconds=[10, 60], cache_policy=NO_CACHE)
def transfer_task(ctx: RunContext, source: SourceConfig, staged: list[Staged]) -> TransferOutcome:
    return transfer_chunk(ctx, source, staged)


class PrefectFanout:
    """Runs each stage's chunks as Prefect task runs (mapped), waiting for all before going on."""

    def collect(self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime) -> list[Any]:
        return collect_task(quote(ctx), source, since, until)

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]:
        return [f.result() for f in stage_task.map(unmapped(quote(ctx)), unmapped(source), chunks)] if chunks else []

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]:
        return [f.result() for f in transfer_task.map(unmapped(quote(ctx)), unmapped(source), chunks)] if chunks else []


def _run_source_subflow(
    ctx: RunContext, source: SourceConfig, since: datetime | None, until: datetime | None
) -> SourceSummary:
    """One subflow run per source. The open run context (ledger, repository, connectors) is live state,
    not a parameter, so the subflow closes over it and its recorded parameters stay plain values."""

    @flow(
        name="transfer-source",
        flow_run_name=f"source-{source.name}",
        task_runner=ThreadPoolTaskRunner(max_workers=source.max_concurrency),
    )
    def transfer_source(source_name: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
        summary = process_source(ctx, source, since=since, until=until, fanout=PrefectFanout())
        return {"counts": summary.counts(), "reasons": dict(summary.reasons), "bytes": summary.bytes}

    out = transfer_source(source.name, since, until)
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
