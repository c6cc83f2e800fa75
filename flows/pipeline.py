"""One nightly transfer as plain functions: the order of the stages, written once.

The Prefect flow (flows/nightly.py) and the plain runner both call `process_source`, handing it a
`map_chunks` that fans chunks of matters out (Prefect tasks under a bounded runner, or a thread
pool); so the stage order, the crash-safety order and the counting exist in one place.

Crash-safety order for one matter (DESIGN.md "Archive repository", STYLE habit 9):
  stage (fetch + fixity + PDF checks, in a scratch folder)       nothing durable yet
  number (one ledger transaction: 件号 + matter row `numbered`)    the recovery point
  finalize (元数据, manifests, 检测报告; bytes depend only on the ledger row)
  put every file (each verified by read-back), then the completion marker
  ledger: `verified` (one transaction)
A re-run finds `numbered` rows and finishes them by re-staging from the stored record: the same
bytes, the same keys, so every put is a no-op or a completion, never a second copy.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

from connectors.repositories import open_repository
from connectors.repositories.base import Repository, RepositoryError
from connectors.sources import open_source
from connectors.sources.base import SourceConnector
from flows.retention_book import RetentionBook, load_book
from ledger import store
from ledger.models import MatterRecord, MatterState, RunStatus
from packager import QuarantineError, discard, finalize_package, stage_matter
from retention import AppraisalError, appraise, compose_archival_code
from schemas.config import Settings, SqlSource, UnifiedSource
from schemas.crashpoints import crashpoint
from schemas.digest import digest_file, json_digest, sha256_bytes
from schemas.errors import SourceUnavailable
from schemas.findings import Finding, GuidangError
from schemas.layout import COMPLETION_MARKER, package_key, transfer_key
from schemas.model import Appraisal, InvalidMatter, Matter, mask_text

log = logging.getLogger("guidang")
BEIJING = ZoneInfo("Asia/Shanghai")

SourceConfig = UnifiedSource | SqlSource

SUMMARY_KEYS = ("collected", "archived", "quarantined", "not_in_scope", "unchanged", "pending")


@dataclass
class SourceSummary:
    """What one source did in one run; `pending` are matters left for the next run (transient faults)."""

    collected: int = 0
    archived: int = 0
    quarantined: int = 0
    not_in_scope: int = 0
    unchanged: int = 0
    pending: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    bytes: int = 0

    def add(self, other: SourceSummary) -> None:
        for k in SUMMARY_KEYS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.reasons.update(other.reasons)
        self.bytes += other.bytes

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in SUMMARY_KEYS}


@dataclass
class Staged:
    """A matter that passed staging and is waiting for its 件号 (or, on resume, already has one)."""

    matter: Matter
    appraisal: Appraisal
    version: int
    staged: Any  # packager.StagedMatter
    record_id: int | None = None


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

    def connector(self, source: SourceConfig) -> SourceConnector:
        if source.name not in self.connectors:
            self.connectors[source.name] = open_source(source, base_dir=self.settings.base_dir)
        return self.connectors[source.name]

    def close(self) -> None:
        for c in self.connectors.values():
            c.close()
        self.ledger.close()


# ---------------------------------------------------------------- opening and closing a run


def open_run(
    settings: Settings, *, parameters: dict[str, Any], dry_run: bool = False, now: datetime | None = None
) -> RunContext:
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    ledger = store.Ledger(settings.resolve_url(settings.ledger_url))
    book = load_book(ledger, settings)
    repository = open_repository(settings.repository, base_dir=settings.base_dir)
    with ledger.transaction() as s:
        run = store.start_run(s, {**parameters, "as_of": now.isoformat()})
    crashpoint("run-opened")
    staging = settings.resolve(settings.staging)
    if staging.is_dir():  # scratch folders of runs that were killed: nothing in them is durable
        for stale in staging.iterdir():
            shutil.rmtree(stale, ignore_errors=True)
    staging_root = staging / run.id
    staging_root.mkdir(parents=True, exist_ok=True)
    return RunContext(settings, ledger, repository, book, run.id, staging_root, now, dry_run)


def close_run(ctx: RunContext, summaries: dict[str, SourceSummary], *, failed: list[str]) -> dict[str, Any]:
    summary = build_summary(ctx.run_id, summaries, dry_run=ctx.dry_run)
    with ctx.ledger.transaction() as s:
        head_seq, head_hash = store.chain_head(s)
        summary["ledger"] = {"events": head_seq, "chain_head": head_hash}
        status = RunStatus.FAILED if failed else RunStatus.COMPLETED
        summary["status"] = str(status)
        store.finish_run(s, ctx.run_id, status=status, summary=summary, error="; ".join(failed) or None)
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
            for name, s in summaries.items()
        },
        "quarantine_reasons": dict(sorted(totals.reasons.items())),
    }


# ---------------------------------------------------------------- one source


def source_window(
    ctx: RunContext, source: SourceConfig, *, since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime, bool]:
    """(since, until, is_backfill). A backfill window never moves the watermark."""
    if since is not None:
        return since, until or now, True
    with ctx.ledger.read() as s:
        wm = store.get_watermark(s, source.name)
    start = (wm - timedelta(minutes=source.overlap_minutes)) if wm else source.initial_since
    return start, until or now, False


class Fanout(Protocol):
    """How the chunks of one source are run: threads here, Prefect tasks in flows/nightly.py."""

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Matter | InvalidMatter]: ...

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]: ...

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]: ...


class ThreadFanout:
    """Plain fan-out over a bounded thread pool (the source's max_concurrency)."""

    def collect(
        self, ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
    ) -> list[Matter | InvalidMatter]:
        return collect_matters(ctx, source, since, until)

    def stage(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Work]]) -> list[ChunkOutcome]:
        return self._map(source, lambda c: stage_chunk(ctx, source, c), chunks)

    def transfer(self, ctx: RunContext, source: SourceConfig, chunks: list[list[Staged]]) -> list[TransferOutcome]:
        return self._map(source, lambda c: transfer_chunk(ctx, source, c), chunks)

    @staticmethod
    def _map(source: SourceConfig, fn: Callable[[Any], Any], chunks: list[Any]) -> list[Any]:
        if len(chunks) <= 1:
            return [fn(c) for c in chunks]
        with ThreadPoolExecutor(max_workers=source.max_concurrency, thread_name_prefix="guidang") as pool:
            return list(pool.map(fn, chunks))


def process_source(
    ctx: RunContext,
    source: SourceConfig,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    fanout: Fanout | None = None,
    now: datetime | None = None,
) -> SourceSummary:
    """Collect, appraise, stage, number, transfer and verify every matter of one source's window."""
    fanout = fanout or ThreadFanout()
    now = now or ctx.now
    summary = SourceSummary()
    start, end, backfill = source_window(ctx, source, since=since, until=until, now=now)

    # 1. finish what a crashed run left numbered but not verified (before anything new is numbered)
    resumed = [] if ctx.dry_run else resume_unfinished(ctx, source, summary)
    if not ctx.dry_run:
        acknowledge_pending(ctx, source)

    # 2. collect the window
    items = fanout.collect(ctx, source, start, end)
    summary.collected = len(items)
    crashpoint("collected")

    # 3. decide per matter: skip, quarantine, or work on it; 4.–6. the stages
    work = triage(ctx, source, items, summary)
    pending_times = work_through(ctx, source, work, summary, fanout, resumed=resumed)
    if ctx.dry_run:
        return summary

    # 7. the watermark: never ahead of a matter that is not in an end state
    if not backfill:
        crashpoint("before-watermark")
        new_mark = (min(pending_times) - timedelta(microseconds=1)) if pending_times else end
        with ctx.ledger.transaction() as s:
            store.set_watermark(s, source.name, max(new_mark, start), ctx.run_id)
        crashpoint("watermark")
    return summary


def work_through(
    ctx: RunContext,
    source: SourceConfig,
    work: list[Work],
    summary: SourceSummary,
    fanout: Fanout,
    *,
    resumed: Sequence[Staged] = (),
) -> list[datetime]:
    """Appraise + stage (fanned out), number (in order), finalize + transfer + verify (fanned out).

    Returns the updated_at of matters left pending by transient faults, which hold the watermark back.
    """
    staged: list[Staged] = []
    pending_times: list[datetime] = []
    for out in fanout.stage(ctx, source, chunk(work, source.chunk_size)):
        summary.add(out.summary)
        staged.extend(out.staged)
        pending_times.extend(out.pending_updated_at)
    if ctx.dry_run:
        summary.archived += len(staged)
        return pending_times
    numbered = list(resumed) + number_staged(ctx, source, staged)
    for res in fanout.transfer(ctx, source, chunk(numbered, source.chunk_size)):
        summary.add(res.summary)
        pending_times.extend(res.pending_updated_at)
    return pending_times


def retry_quarantined(settings: Settings, entry_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """`guidang quarantine retry`: fetch each open entry's matter afresh from its source (the stored
    record when the source no longer has it) and put it through the stages again."""
    from ledger.models import QuarantineEntry

    ctx = open_run(settings, parameters={"retry": list(entry_ids) if entry_ids else "all-open"})
    summaries: dict[str, SourceSummary] = {}
    failed: list[str] = []
    try:
        with ctx.ledger.read() as s:
            q = select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None))
            if entry_ids:
                q = q.where(QuarantineEntry.id.in_(list(entry_ids)))
            entries = list(s.scalars(q.order_by(QuarantineEntry.id)).all())
        by_source: dict[str, list[QuarantineEntry]] = {}
        for e in entries:
            by_source.setdefault(e.source, []).append(e)
        for name, group in by_source.items():
            summary = summaries.setdefault(name, SourceSummary())
            try:
                source = settings.source(name)
                work: list[Work] = []
                for e in group:
                    item = ctx.connector(source).fetch_matter(e.project_id)
                    if item is None and "matter" in e.record:
                        item = Matter.model_validate(e.record["matter"])
                    summary.collected += 1
                    if item is None:
                        summary.unchanged += 1
                        continue
                    if isinstance(item, InvalidMatter):
                        _quarantine_invalid(ctx, item, summary, force=True)
                        continue
                    with ctx.ledger.read() as s:
                        latest = store.latest_version(s, item.source, item.project_id)
                    version = 1 if latest is None else latest.version + 1
                    work.append(Work(item, version, e.id))
                work_through(ctx, source, work, summary, ThreadFanout())
            except GuidangError as exc:
                message = mask_text(f"{name}: {exc.__class__.__name__}: {exc}")
                summary.error = message
                failed.append(message)
    finally:
        result = close_run(ctx, summaries, failed=failed)
    return result


def write_transfer_batches(ctx: RunContext) -> list[str]:
    """One DA/T 93 transfer per fonds for every verified matter not yet in a batch: 说明文件, 目录文件,
    登记表, stored under transfers/<batch id>/ beside the packages and recorded on each matter row.

    "Not yet in a batch" rather than "verified by this run", so that matters verified by a run that
    was killed before its batch was written join the next batch instead of none. The batch id is
    derived from its content, so a re-run after a kill between storing and recording it rewrites the
    same objects (a no-op) instead of making a second batch."""
    from packager.transfer import TransferRow, write_transfer_batch

    with ctx.ledger.read() as s:
        rows = list(
            s.scalars(
                select(MatterRecord).where(
                    MatterRecord.batch_id.is_(None), MatterRecord.state == MatterState.VERIFIED
                )
            ).all()
        )
    by_fonds: dict[str, list[MatterRecord]] = {}
    for r in rows:
        by_fonds.setdefault(r.fonds or "", []).append(r)
    written: list[str] = []
    created_at = ctx.now
    for fonds_code, records in sorted(by_fonds.items()):
        fonds = next(f for f in ctx.settings.fonds if f.code == fonds_code)
        members = sha256_bytes("\n".join(sorted(r.archival_code or "" for r in records)).encode("utf-8"))
        batch_id = f"{fonds_code}-{created_at.astimezone(BEIJING):%Y%m%d}-{members[:8]}"
        packages = [
            TransferRow(
                archival_code=r.archival_code or "",
                responsible=r.agency,
                title=r.title or "",
                date=f"{r.completed_at.astimezone(BEIJING):%Y%m%d}",
                period=r.retention_period or "",
                pages=r.page_count or 0,
                bytes=r.total_bytes or 0,
                file_count=r.file_count or 0,
            )
            for r in records
        ]
        files = write_transfer_batch(
            ctx.staging_root / "transfers" / batch_id,
            batch_id=batch_id,
            fonds=fonds,
            packages=packages,
            created_at=created_at,
        )
        for path in files:
            ctx.repository.put_file(f"{transfer_key(batch_id)}/{path.name}", path, digest_file(path).sha256)
        crashpoint("batch-stored")
        with ctx.ledger.transaction() as s:
            for r in records:
                row = s.get(MatterRecord, r.id)
                if row is not None:
                    row.batch_id = batch_id
            store.append_event(
                s,
                "transfer-batch",
                run_id=ctx.run_id,
                payload={
                    "batch_id": batch_id,
                    "fonds": fonds_code,
                    "matters": len(records),
                    "bytes": sum(p.bytes for p in packages),
                    "files": [p.name for p in files],
                },
            )
        crashpoint("batch-recorded")
        written.append(batch_id)
    return written


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
) -> dict[str, Any]:
    """One night over the selected sources (all by default); returns the run summary.

    A source that fails (unreachable after retries, repository or ledger unwritable) is reported in
    the summary with its error and marks the run failed; the other sources still run.
    """
    selected = [settings.source(n) for n in sources] if sources else list(settings.sources)
    parameters = {
        "sources": [s.name for s in selected],
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "dry_run": dry_run,
    }
    ctx = open_run(settings, parameters=parameters, dry_run=dry_run, now=now)
    run_source = run_source or (lambda c, src, a, b: process_source(c, src, since=a, until=b))
    summaries: dict[str, SourceSummary] = {}
    failed: list[str] = []
    for src in selected:
        try:
            summaries[src.name] = run_source(ctx, src, since, until)
        except GuidangError as exc:
            message = mask_text(f"{src.name}: {exc.__class__.__name__}: {exc}")
            log.error("source failed: %s", message)
            summaries[src.name] = SourceSummary(error=message)
            failed.append(message)
    batches: list[str] = []
    if not dry_run:
        try:
            batches = write_transfer_batches(ctx)
        except GuidangError as exc:
            failed.append(mask_text(f"transfer batch: {exc}"))
    crashpoint("before-run-closed")
    result = close_run(ctx, summaries, failed=failed)
    result["transfer_batches"] = batches
    return result


def chunk(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def collect_matters(
    ctx: RunContext, source: SourceConfig, since: datetime, until: datetime
) -> list[Matter | InvalidMatter]:
    """The whole window, as the source gives it. A source that stays unreachable raises SourceUnavailable."""
    return list(ctx.connector(source).completed_between(since, until))


# ---------------------------------------------------------------- triage


@dataclass
class Work:
    matter: Matter
    version: int
    reopened_quarantine: int | None = None


def triage(
    ctx: RunContext, source: SourceConfig, items: Iterable[Matter | InvalidMatter], summary: SourceSummary
) -> list[Work]:
    """Decide, per collected record, whether it is new, a new version (补充材料), unchanged, or invalid."""
    work: list[Work] = []
    seen: set[str] = set()
    for item in items:
        if item.project_id in seen:  # a source that pages unstably can repeat a record
            continue
        seen.add(item.project_id)
        if isinstance(item, InvalidMatter):
            _quarantine_invalid(ctx, item, summary)
            continue
        h = item.content_hash()
        with ctx.ledger.read() as s:
            latest = store.latest_version(s, item.source, item.project_id)
            open_q = store.open_quarantine(s, item.source, item.project_id)
        if open_q is not None and open_q.content_hash == h:
            summary.unchanged += 1  # already quarantined as it is; `guidang quarantine retry` re-tries it
            continue
        if latest is None:
            work.append(Work(item, 1, open_q.id if open_q else None))
        elif latest.content_hash == h:
            summary.unchanged += 1
        elif latest.state in (MatterState.NUMBERED, MatterState.TRANSFERRED):
            summary.unchanged += 1  # the source changed a matter we are still finishing: next run versions it
        else:
            work.append(Work(item, latest.version + 1, open_q.id if open_q else None))
    return work


def _quarantine_invalid(ctx: RunContext, item: InvalidMatter, summary: SourceSummary, *, force: bool = False) -> None:
    findings = [Finding(p.code, item.key, mask_text(p.message)) for p in item.findings]
    raw_hash = json_digest(item.raw)
    with ctx.ledger.read() as s:
        open_q = store.open_quarantine(s, item.source, item.project_id)
    if not force and open_q is not None and open_q.content_hash == raw_hash:
        summary.unchanged += 1
        return
    _put_in_quarantine(
        ctx,
        summary,
        key=item.key,
        source=item.source,
        project_id=item.project_id,
        content_hash=raw_hash,
        updated_at=item.updated_at,
        findings=findings,
        record={"invalid": item.model_dump(mode="json")},
    )


# ---------------------------------------------------------------- appraise + stage


@dataclass
class ChunkOutcome:
    staged: list[Staged] = field(default_factory=list)
    summary: SourceSummary = field(default_factory=SourceSummary)
    pending_updated_at: list[datetime] = field(default_factory=list)


def stage_chunk(ctx: RunContext, source: SourceConfig, works: list[Work]) -> ChunkOutcome:
    out = ChunkOutcome()
    connector = ctx.connector(source)
    for w in works:
        m = w.matter
        try:
            appraisal = appraise(ctx.book.table_for(m.completed_at.date()), m)
        except AppraisalError as exc:
            _quarantine_matter(ctx, m, exc.findings, out.summary, w.reopened_quarantine)
            continue
        if not appraisal.in_scope:
            out.summary.not_in_scope += 1
            if not ctx.dry_run:
                with ctx.ledger.transaction() as s:
                    store.record_not_in_scope(s, _record(m, appraisal, w.version, ctx.run_id), run_id=ctx.run_id)
                    if w.reopened_quarantine:
                        store.resolve_quarantine(s, w.reopened_quarantine, "not in scope", run_id=ctx.run_id)
                crashpoint("not-in-scope")
            continue
        try:
            staged = stage_matter(m, appraisal, connector.open_document, ctx.staging_root)
        except QuarantineError as exc:
            _quarantine_matter(ctx, m, exc.findings, out.summary, w.reopened_quarantine)
            continue
        except SourceUnavailable as exc:
            out.summary.pending += 1
            out.pending_updated_at.append(m.updated_at)
            log.warning("pending %s: source unavailable: %s", m.key, exc)
            continue
        crashpoint("staged")
        try:  # the 四性检测 before a 件号 is given, with a provisional 档号, so that 件号 stay gap-free
            precheck(ctx, source, staged, appraisal)
        except QuarantineError as exc:
            discard(staged)
            _quarantine_matter(ctx, m, exc.findings, out.summary, w.reopened_quarantine)
            continue
        crashpoint("prechecked")
        out.staged.append(Staged(m, appraisal, w.version, staged, None))
        if w.reopened_quarantine and not ctx.dry_run:
            with ctx.ledger.transaction() as s:
                store.resolve_quarantine(s, w.reopened_quarantine, "passed on re-collection", run_id=ctx.run_id)
    return out


def precheck(ctx: RunContext, source: SourceConfig, staged: Any, appraisal: Appraisal) -> None:
    """Build the package once with 件号 1 of its sequence and run every check on it; the real build
    after numbering differs only in the 档号 and 件号 (finalize_package rewrites those files)."""
    fonds = ctx.settings.fonds_for(source)
    provisional = compose_archival_code(
        fonds.archival_code_template,
        fonds=fonds.code,
        category=appraisal.category_code,
        year=appraisal.year,
        period=str(appraisal.retention_period),
        org=appraisal.org_code,
        item=1,
    )
    finalize_package(
        staged,
        fonds=fonds,
        archival_code=provisional,
        item_number=1,
        archived_at=ctx.now,
        check_warnings=ctx.settings.check_warnings,
    )


def _quarantine_matter(
    ctx: RunContext, m: Matter, findings: list[Finding], summary: SourceSummary, _reopened: int | None
) -> None:
    _put_in_quarantine(
        ctx,
        summary,
        key=m.key,
        source=m.source,
        project_id=m.project_id,
        content_hash=m.content_hash(),
        updated_at=m.updated_at,
        findings=findings,
        record={"matter": m.model_dump(mode="json")},
    )


def _put_in_quarantine(
    ctx: RunContext,
    summary: SourceSummary,
    *,
    key: str,
    source: str,
    project_id: str,
    content_hash: str,
    updated_at: datetime | None,
    findings: list[Finding],
    record: dict[str, Any],
) -> None:
    """Count, log (masked) and record one quarantined matter with everything needed to retry it."""
    summary.quarantined += 1
    summary.reasons.update({f.code for f in findings})
    log.warning("quarantined %s: %s", key, mask_text("; ".join(str(f) for f in findings)))
    if ctx.dry_run:
        return
    with ctx.ledger.transaction() as s:
        store.quarantine(
            s,
            source=source,
            project_id=project_id,
            content_hash=content_hash,
            source_updated_at=updated_at,
            findings=findings,
            record=record,
            run_id=ctx.run_id,
        )
    crashpoint("quarantined")


def _record(m: Matter, a: Appraisal, version: int, run_id: str) -> MatterRecord:
    return MatterRecord(
        source=m.source,
        project_id=m.project_id,
        version=version,
        content_hash=m.content_hash(),
        state=MatterState.NUMBERED,
        service_code=m.service_code,
        service_name=m.service_name[:255],
        matter_type=m.matter_type,
        agency=m.agency[:255],
        title=package_title(m)[:255],
        completed_at=m.completed_at,
        source_updated_at=m.updated_at,
        year=a.year,
        retention_period=str(a.retention_period) if a.retention_period else None,
        category_code=a.category_code,
        org_code=a.org_code,
        retention_version=a.table_version,
        retention_row=a.rule_row,
        disposition_date=a.disposition_date,
        run_id=run_id,
        record=m.model_dump(mode="json"),
        appraisal=a.model_dump(mode="json"),
    )


def package_title(m: Matter) -> str:
    """题名: what a reader of the 目录 recognises the matter by."""
    return f"{m.applicant.name}{m.service_name}（{m.project_id}）"


# ---------------------------------------------------------------- number


def number_staged(ctx: RunContext, source: SourceConfig, staged: list[Staged]) -> list[Staged]:
    """Give every staged matter its 件号, in completion order, each in its own short transaction.

    The order is deterministic (completion time, then 办件编号) so that an interrupted night and an
    uninterrupted one number the same matters alike.
    """
    fonds = ctx.settings.fonds_for(source)
    for st in sorted(staged, key=lambda x: (x.matter.completed_at, x.matter.project_id)):
        a = st.appraisal
        assert a.retention_period is not None
        with ctx.ledger.transaction() as s:
            item = store.allocate_item_number(
                s,
                fonds=fonds.code,
                category_code=a.category_code,
                year=a.year,
                retention_period=str(a.retention_period),
                org_code=a.org_code,
            )
            code = compose_archival_code(
                fonds.archival_code_template,
                fonds=fonds.code,
                category=a.category_code,
                year=a.year,
                period=str(a.retention_period),
                org=a.org_code,
                item=item,
            )
            rec = _record(st.matter, a, st.version, ctx.run_id)
            rec.fonds, rec.item_number, rec.archival_code = fonds.code, item, code
            rec.package_key = package_key(fonds.code, a.year, str(a.retention_period), code)
            rec.numbered_at = ctx.now
            store.record_numbered(s, rec, run_id=ctx.run_id)
            st.record_id = rec.id
        crashpoint("numbered")
    return sorted(staged, key=lambda x: (x.matter.completed_at, x.matter.project_id))


def resume_unfinished(ctx: RunContext, source: SourceConfig, summary: SourceSummary) -> list[Staged]:
    """Matters a crashed run numbered but did not verify: re-stage them from the stored record."""
    with ctx.ledger.read() as s:
        rows = list(store.unfinished(s, source.name))
    out: list[Staged] = []
    connector = ctx.connector(source)
    for rec in rows:
        m = Matter.model_validate(rec.record)
        appraisal = _appraisal_of(rec)
        try:
            staged = stage_matter(m, appraisal, connector.open_document, ctx.staging_root)
        except QuarantineError as exc:
            # The source no longer gives what it gave when the matter was numbered. The 件号 stays
            # taken by this row (gap-free); the matter waits for an archivist in quarantine.
            _quarantine_matter(ctx, m, exc.findings, summary, None)
            continue
        except SourceUnavailable as exc:
            summary.pending += 1
            log.warning("pending %s (resume): %s", m.key, exc)
            continue
        out.append(Staged(m, appraisal, rec.version, staged, rec.id))
    return out


def _appraisal_of(rec: MatterRecord) -> Appraisal:
    return Appraisal.model_validate(rec.appraisal)


# ---------------------------------------------------------------- finalize + transfer + verify


@dataclass
class TransferOutcome:
    summary: SourceSummary = field(default_factory=SourceSummary)
    pending_updated_at: list[datetime] = field(default_factory=list)


def transfer_chunk(ctx: RunContext, source: SourceConfig, numbered: list[Staged]) -> TransferOutcome:
    out = TransferOutcome()
    for st in numbered:
        try:
            stored_bytes = transfer_one(ctx, source, st)
        except QuarantineError as exc:
            # Only a defect the precheck could not see lands here; the 件号 stays with this row
            # (state quarantined), so the sequence has no gap and the auditor sees why.
            discard(st.staged)
            _quarantine_matter(ctx, st.matter, exc.findings, out.summary, None)
            with ctx.ledger.transaction() as s:
                store.mark_state(
                    s, st.record_id, MatterState.QUARANTINED, run_id=ctx.run_id, payload={"codes": sorted(exc.codes)}
                )
            continue
        except (SourceUnavailable, RepositoryError) as exc:
            if isinstance(exc, RepositoryError) and not _transient(exc):
                raise  # no bucket, no permission, a conflict, corrupt read-back: the run must fail loudly
            # a hiccup after the store's own retries: the row stays numbered and the next run finishes it
            out.summary.pending += 1
            out.pending_updated_at.append(st.matter.updated_at)
            log.warning("pending %s: %s", st.matter.key, exc)
            continue
        out.summary.archived += 1
        out.summary.bytes += stored_bytes
    return out


TRANSIENT_REPOSITORY_CODES = frozenset({"REPO-TRANSIENT", "REPO-UNREACHABLE"})


def _transient(exc: RepositoryError) -> bool:
    return any(f.code in TRANSIENT_REPOSITORY_CODES for f in exc.findings)


def transfer_one(ctx: RunContext, source: SourceConfig, st: Staged) -> int:
    with ctx.ledger.read() as s:
        rec = s.get(MatterRecord, st.record_id)
    assert rec is not None and rec.archival_code and rec.package_key and rec.numbered_at
    if rec.state == MatterState.VERIFIED:  # a retried chunk: this one already made it
        return 0
    fonds = ctx.settings.fonds_for(source)
    result = finalize_package(
        st.staged,
        fonds=fonds,
        archival_code=rec.archival_code,
        item_number=rec.item_number,
        archived_at=rec.numbered_at,
        check_warnings=ctx.settings.check_warnings,
    )
    crashpoint("finalized")
    # Object Lock only when the configuration asks for it (a bucket without it is then a clear error):
    # retain until the disposition date; 永久 is a legal hold, which has no end date.
    locking = getattr(ctx.settings.repository, "object_lock_mode", None) is not None
    retain_until = date.fromisoformat(rec.disposition_date) if (locking and rec.disposition_date) else None
    permanent = locking and rec.retention_period == "Y"
    total = 0
    listing = []
    for f in result.files:
        ctx.repository.put_file(
            f"{rec.package_key}/{f.path}",
            result.folder / f.path,
            f.sha256,
            retain_until=retain_until,
            legal_hold=permanent,
        )
        total += f.size
        listing.append({"path": f.path, "size": f.size, "sha256": f.sha256, "sm3": f.sm3})
        crashpoint("stored-file")
    marker = json.dumps(
        {"archival_code": rec.archival_code, "files": listing}, ensure_ascii=False, sort_keys=True, indent=1
    ).encode("utf-8")
    crashpoint("before-marker")
    ctx.repository.put_bytes(
        f"{rec.package_key}/{COMPLETION_MARKER}", marker, retain_until=retain_until, legal_hold=permanent
    )
    total += len(marker)  # the register's byte totals are what the repository holds, marker included
    crashpoint("after-marker")
    now = datetime.now(UTC)
    with ctx.ledger.transaction() as s:
        store.mark_state(
            s,
            rec.id,
            MatterState.TRANSFERRED,
            run_id=ctx.run_id,
            payload={"files": len(listing), "bytes": total, "package_key": rec.package_key},
            transferred_at=now,
            file_count=len(listing),
            total_bytes=total,
            page_count=getattr(result, "page_count", None),
        )
        store.mark_state(
            s,
            rec.id,
            MatterState.VERIFIED,
            run_id=ctx.run_id,
            payload={"marker_sha256": sha256_bytes(marker), "files": listing},
            verified_at=now,
        )
    crashpoint("verified")
    shutil.rmtree(result.folder, ignore_errors=True)
    _acknowledge(ctx, source, rec)
    return total


def _acknowledge(ctx: RunContext, source: SourceConfig, rec: MatterRecord) -> None:
    """归档回传 after verification; a failed acknowledgement is retried by the next run, never fatal."""
    try:
        ctx.connector(source).acknowledge(rec.project_id, rec.archival_code or "")
    except GuidangError as exc:
        log.warning("acknowledgement of %s/%s failed, will retry: %s", rec.source, rec.project_id, exc)
        return
    with ctx.ledger.transaction() as s:
        row = s.get(MatterRecord, rec.id)
        if row is not None:
            row.acknowledged_at = datetime.now(UTC)
    crashpoint("acknowledged")


def acknowledge_pending(ctx: RunContext, source: SourceConfig) -> None:
    """Retry 归档回传 for matters verified earlier whose acknowledgement did not reach the source."""
    with ctx.ledger.read() as s:
        rows = list(
            s.scalars(
                select(MatterRecord).where(
                    MatterRecord.source == source.name,
                    MatterRecord.state == MatterState.VERIFIED,
                    MatterRecord.acknowledged_at.is_(None),
                )
            ).all()
        )
    for rec in rows:
        _acknowledge(ctx, source, rec)
