"""Numbering: give each staged matter its 件号 and 档号, and pick up what a crashed run had numbered.

The matter row written here, in the same transaction as its 件号, is the recovery point of the
crash-safety order (night/engine.py): before it nothing is durable, after it every step can be
redone from the row. So this module also holds how a row is built from a matter (`matter_record`)
and how a row becomes work again (`resume_unfinished`), and the one composition of a 档号 that the
precheck (provisional, 件号 1) and the real numbering share.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ledger import queries, sequences, store
from ledger.models import MatterRecord, MatterState
from night.context import RunContext, SourceConfig, SourceSummary
from night.triage import quarantine_matter, stage_documents
from packager import QuarantineError
from retention import compose_archival_code
from schemas.config import Fonds
from schemas.crashpoints import crashpoint
from schemas.errors import SourceUnavailable
from schemas.layout import package_key
from schemas.metadata import matter_title
from schemas.model import Appraisal, Matter

log = logging.getLogger("guidang")


@dataclass
class Staged:
    """A matter that passed staging and is waiting for its 件号 (or, on resume, already has one)."""

    matter: Matter
    appraisal: Appraisal
    version: int
    staged: Any  # packager.StagedMatter
    record_id: int | None = None


def number_staged(ctx: RunContext, source: SourceConfig, staged: list[Staged]) -> list[Staged]:
    """Give every staged matter its 件号, in completion order, one transaction per chunk of matters.

    The order is deterministic (completion time, then 办件编号) so that an interrupted night and an
    uninterrupted one number the same matters alike; a transaction commits each 件号 with the row
    that uses it, so a rollback returns the numbers and the sequence stays gap-free.
    """
    fonds_of = {id(st): ctx.settings.fonds_for(source, st.matter.agency, st.matter.agency_code) for st in staged}
    ordered = sorted(staged, key=lambda x: (x.matter.completed_at, x.matter.project_id))
    for start in range(0, len(ordered), source.chunk_size):
        part = ordered[start : start + source.chunk_size]
        with ctx.ledger.transaction() as s:
            locked = sequences.lock_sequences(s, [_sequence_key(fonds_of[id(st)], st.appraisal) for st in part])
            records = []
            for st in part:
                a, fonds = st.appraisal, fonds_of[id(st)]
                assert a.retention_period is not None
                item = sequences.take_item_number(locked, _sequence_key(fonds, a))
                code = archival_code(fonds, a, item)
                rec = matter_record(st.matter, a, st.version, ctx.run_id)
                rec.fonds, rec.item_number, rec.archival_code = fonds.code, item, code
                rec.package_key = package_key(fonds.code, a.year, str(a.retention_period), code)
                rec.numbered_at = ctx.now
                records.append(rec)
            store.record_numbered_chunk(s, records, run_id=ctx.run_id)
            for st, rec in zip(part, records, strict=True):
                st.record_id = rec.id
        crashpoint("numbered")
    return ordered


def _sequence_key(fonds: Fonds, a: Appraisal) -> dict[str, Any]:
    """The 件号 sequence a matter draws from: 全宗, 门类, 年度, 保管期限, 机构问题代码."""
    return {"fonds": fonds.code, "category_code": a.category_code, "year": a.year,
            "retention_period": str(a.retention_period), "org_code": a.org_code}


def archival_code(fonds: Fonds, a: Appraisal, item: int) -> str:
    """档号 of 件号 `item` in the matter's sequence (全宗, 门类, 年度, 保管期限, 机构问题代码)."""
    return compose_archival_code(
        fonds.archival_code_template,
        fonds=fonds.code,
        category=a.category_code,
        year=a.year,
        period=str(a.retention_period),
        org=a.org_code,
        item=item,
    )


def resume_unfinished(ctx: RunContext, source: SourceConfig, summary: SourceSummary) -> list[Staged]:
    """Matters a crashed run numbered but did not verify: re-stage them from the stored record."""
    with ctx.ledger.read() as s:
        rows = list(queries.unfinished(s, source.name))
    out: list[Staged] = []
    connector = ctx.connector(source)
    for rec in rows:
        m = Matter.model_validate(rec.record)
        appraisal = Appraisal.model_validate(rec.appraisal)
        try:
            staged = stage_documents(ctx, m, appraisal, connector.open_document)
        except QuarantineError as exc:
            # The source no longer gives what it gave when the matter was numbered (or staging it
            # fails). The 件号 stays taken by this row (gap-free); the matter waits in quarantine.
            quarantine_matter(ctx, m, exc.findings, summary)
            continue
        except SourceUnavailable as exc:
            summary.pending += 1
            log.warning("pending %s (resume): %s", m.key, exc)
            continue
        out.append(Staged(m, appraisal, rec.version, staged, rec.id))
    return out


def matter_record(m: Matter, a: Appraisal, version: int, run_id: str) -> MatterRecord:
    """The ledger row of a matter as appraised; numbering adds its 件号, 档号 and package key."""
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
        title=matter_title(m)[:255],  # 元数据's 题名, so the 目录文件 lists the same
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
