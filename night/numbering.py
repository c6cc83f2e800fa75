"""Numbering: give each staged matter its 件号 and 档号, and pick up what a crashed run had numbered.

The matter row written here, in the same transaction as its 件号, is the recovery point of the
crash-safety order (night/engine.py): before it nothing is durable, after it every step can be
redone from the row. So this module also holds how a row becomes work again (`resume_unfinished`);
how a row is built from a matter and the one composition of a 档号, which the precheck (provisional,
件号 1) shares, are in night/work.py.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.sources.base import SourceConnector
from guidang_io.crashpoints import crashpoint
from ledger import sequences, store
from ledger.models import MatterRecord
from night.context import RunContext, SourceSummary
from night.quarantine import quarantine_matter
from night.staging import stage_documents
from night.work import Staged, archival_code, matter_record
from packager import QuarantineError
from schemas.config import Fonds
from schemas.errors import InvariantBroken, SourceUnavailable
from schemas.layout import package_key
from schemas.model import Appraisal, Matter

log = logging.getLogger("guidang")


def number_staged(ctx: RunContext, staged: list[Staged]) -> list[Staged]:
    """Give every staged matter of one stage chunk its 件号, in completion order, in one transaction.

    The order is deterministic (completion time, then 办件编号) so that an interrupted night and an
    uninterrupted one number the same matters alike; the transaction commits each 件号 with the row
    that uses it, so a rollback returns the numbers and the sequence stays gap-free. A stage chunk
    is a consecutive run of the window in that order (night/fanout.run_slice), so numbering chunk
    after chunk numbers the window as a whole would be.
    """
    ordered = sorted(staged, key=lambda x: (x.matter.completed_at, x.matter.project_id))
    fonds_of, keys = [_fonds(st) for st in ordered], [_sequence_key(st) for st in ordered]
    with ctx.ledger.transaction() as s:
        locked = sequences.lock_sequences(s, keys)
        records = []
        for st, fonds, key in zip(ordered, fonds_of, keys, strict=True):
            item = sequences.take_item_number(locked, key)
            a = st.appraisal
            code = archival_code(fonds, a, item)
            rec = matter_record(st.matter, a, st.version, ctx.run_id)
            rec.fonds, rec.item_number, rec.archival_code = fonds.code, item, code
            rec.package_key = package_key(fonds.code, a.year, str(a.retention_period), code)
            rec.numbered_at = ctx.now
            records.append(rec)
        store.record_numbered_chunk(s, records, run_id=ctx.run_id)
        for st, rec in zip(ordered, records, strict=True):
            st.record_id = rec.id
    crashpoint("numbered")
    return ordered


def _fonds(st: Staged) -> Fonds:
    """The 全宗 of a newly staged matter; a resumed one has none, as it keeps the 件号 it was given."""
    if st.fonds is None:
        raise InvariantBroken(f"{st.matter.project_id}: numbered without the 全宗 its precheck was built for")
    return st.fonds


def _sequence_key(st: Staged) -> dict[str, Any]:
    """The 件号 sequence a matter draws from: 全宗, 门类, 年度, 保管期限, 机构问题代码."""
    a = st.appraisal
    if a.retention_period is None:
        raise InvariantBroken(f"{st.matter.project_id}: numbered without a retention period")
    return {"fonds": _fonds(st).code, "category_code": a.category_code, "year": a.year,
            "retention_period": str(a.retention_period), "org_code": a.org_code}


def resume_unfinished(
    ctx: RunContext, connector: SourceConnector, rows: list[MatterRecord], summary: SourceSummary
) -> list[Staged]:
    """Matters a crashed run numbered but did not verify (`rows`, ledger/queries.unfinished):
    re-stage them from the stored record."""
    out: list[Staged] = []
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


