"""Appraisal and staging: everything that can refuse a matter before it is given a 件号.

A chunk of matters is appraised against the retention table in force, fetched into a scratch
folder (fixity, PDF checks) and put through the 四性检测 with a provisional 档号. Nothing here is
durable except a not-in-scope row or a quarantine entry: a matter that gets through is handed on
as `Staged`, and only numbering (night/numbering.py) commits it, so 件号 stay gap-free. Staging
the documents (`stage_documents`) is also how numbering re-stages a matter a crashed run numbered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from guidang_io.crashpoints import crashpoint
from ledger import holds, store
from night.context import RunContext, SourceConfig, SourceSummary
from night.quarantine import quarantine_matter, unexpected_failure
from night.retention_book import NoVersionInForce
from night.work import Staged, Work, archival_code, matter_record
from packager import CheckReport, QuarantineError, StagedMatter, discard, finalize_package, stage_matter
from packager.stage import Opener
from retention import AppraisalError, appraise
from schemas.config import Fonds
from schemas.errors import SourceUnavailable
from schemas.findings import Finding
from schemas.model import Appraisal, Matter

log = logging.getLogger("guidang")


def stage_documents(ctx: RunContext, m: Matter, appraisal: Appraisal, open_document: Opener) -> StagedMatter:
    """`stage_matter` into the run's staging folder, for a night and for a resume alike: a defect
    is the QuarantineError it always was, and so is now an exception nobody planned for."""
    try:
        return stage_matter(
            m, appraisal, open_document, ctx.staging_root, pdf_parse_limit=ctx.settings.pdf_parse_limit_mb * 2**20,
            content=ctx.content_options(),
        )
    except (QuarantineError, SourceUnavailable):
        raise
    except Exception as exc:  # one matter never stops a night: a name too long, a bug
        raise unexpected_failure(m.key, "staging", exc, ctx.staging_root) from exc


@dataclass
class ChunkOutcome:
    staged: list[Staged] = field(default_factory=list)
    summary: SourceSummary = field(default_factory=SourceSummary)
    pending_updated_at: list[datetime] = field(default_factory=list)


def with_unit_org_code(ctx: RunContext, m: Matter, appraisal: Appraisal) -> Appraisal:
    """The unit's 机构问题代码 where the deciding rule names none (the rule, being specific, wins)."""
    unit = ctx.settings.unit_index.find(m.agency, m.agency_code)
    if appraisal.org_code or unit is None or not unit.org_code:
        return appraisal
    return appraisal.model_copy(update={"org_code": unit.org_code})


def stage_chunk(ctx: RunContext, source: SourceConfig, works: list[Work]) -> ChunkOutcome:
    out = ChunkOutcome()
    connector = ctx.connector(source)
    for w in works:
        m = w.matter
        if m.completed_at > ctx.now:
            quarantine_matter(ctx, m, [completed_in_future(m, ctx.now)], out.summary)
            continue
        try:
            appraisal = with_unit_org_code(ctx, m, appraise(ctx.book.table_for(m.completed_at.date()), m))
        except AppraisalError as exc:
            quarantine_matter(ctx, m, exc.findings, out.summary)
            continue
        except NoVersionInForce as exc:  # a 办结时间 older than every table: this matter waits, not the source
            quarantine_matter(ctx, m, [Finding("Q-RETENTION-NO-RULE", m.key, str(exc))], out.summary)
            continue
        if not appraisal.in_scope:
            out.summary.not_in_scope += 1
            if not ctx.dry_run:
                with ctx.ledger.transaction() as s:
                    store.record_not_in_scope(s, matter_record(m, appraisal, w.version, ctx.run_id), run_id=ctx.run_id)
                    if w.reopened_quarantine:
                        holds.resolve_quarantine(s, w.reopened_quarantine, "not in scope", run_id=ctx.run_id)
                crashpoint("not-in-scope")
            continue
        try:
            staged = stage_documents(ctx, m, appraisal, connector.open_document)
        except QuarantineError as exc:
            quarantine_matter(ctx, m, exc.findings, out.summary)
            continue
        except SourceUnavailable as exc:
            out.summary.pending += 1
            out.pending_updated_at.append(m.updated_at)
            log.warning("pending %s: source unavailable: %s", m.key, exc)
            continue
        crashpoint("staged")
        try:  # the 四性检测 before a 件号 is given, with a provisional 档号, so that 件号 stay gap-free
            fonds, report = precheck(ctx, source, staged, appraisal)
        except QuarantineError as exc:
            discard(staged)
            quarantine_matter(ctx, m, exc.findings, out.summary)
            continue
        crashpoint("prechecked")
        out.staged.append(Staged(m, appraisal, w.version, staged, None, fonds, report))
        if w.reopened_quarantine and not ctx.dry_run:
            with ctx.ledger.transaction() as s:
                holds.resolve_quarantine(s, w.reopened_quarantine, "passed on re-collection", run_id=ctx.run_id)
    return out


def completed_in_future(m: Matter, run_time: datetime) -> Finding:
    """A matter completed after the run's time (`--as-of`, else now) cannot be archived yet: its
    归档时间 (the run's time) would precede its 办结时间. Either the source's date is wrong, or the
    run's time is; once one is corrected, the next night or a retry takes the matter."""
    local_run_time = run_time.astimezone(m.completed_at.tzinfo)
    return Finding(
        "Q-COMPLETED-IN-FUTURE", m.key,
        f"办结时间 {m.completed_at.isoformat()} is later than the run's time {local_run_time.isoformat()} "
        "(--as-of, else now): 归档时间 may not precede 办结时间",
        details={"completed_at": m.completed_at.isoformat(), "run_time": run_time.isoformat()},
    )


def precheck(ctx: RunContext, source: SourceConfig, staged: StagedMatter,
             appraisal: Appraisal) -> tuple[Fonds, CheckReport]:
    """Build the package once with 件号 1 of its sequence and run every check on it; the real build
    after numbering differs only in the 档号 and 件号, and is the one that writes 元数据, the manifests
    and 检测报告 (the precheck writes nothing). Returns the 全宗 the package was built for, the one
    numbering then draws its 件号 from, and the report, which the real build renumbers
    (packager.checks.renumbered) instead of running every item a second time.

    Any failure is the matter's QuarantineError (an unexpected one as Q-STAGE-FAILED)."""
    fonds = ctx.settings.fonds_for(source, staged.matter.agency, staged.matter.agency_code)
    try:
        report = finalize_package(
            staged,
            fonds=fonds,
            archival_code=archival_code(fonds, appraisal, 1),
            item_number=1,
            archived_at=ctx.now,
            check_warnings=ctx.settings.check_warnings,
            write=False,  # the provisional package is judged in memory; the real build writes it
        ).report
    except QuarantineError:
        raise
    except Exception as exc:
        raise unexpected_failure(staged.matter.key, "precheck", exc, ctx.staging_root) from exc
    return fonds, report
