"""What one night did, read back from the ledger for its reports and events (flows/prefect_ops.py).

The night's summary counts per source; operations also ask per 实施机构 (`agency`, the body that
handled the matter) and which matters were quarantined for which reasons. Both are facts the
ledger already holds (matter rows and quarantine entries carry the run's id), so they are read
here rather than counted a second time along the hot path.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState, QuarantineEntry
from schemas.personal import agency_of

UNKNOWN_AGENCY = "（未识别的实施机构）"  # a record the canonical model refused may name no 实施机构


@dataclass(frozen=True)
class Quarantined:
    source: str
    project_id: str
    codes: list[str]
    messages: list[str]
    agency: str


def agency_of_record(record: dict[str, Any]) -> str:
    """The 实施机构 of a quarantine row in whichever shape it was stored (schemas/personal.py)."""
    return agency_of(record) or UNKNOWN_AGENCY


def quarantined_in_run(session: Session, run_id: str) -> list[Quarantined]:
    """Matters whose quarantine entry this run opened or added an attempt to, with their reason codes."""
    rows = session.scalars(
        select(QuarantineEntry).where(QuarantineEntry.run_id == run_id).order_by(QuarantineEntry.id)
    ).all()
    return [
        Quarantined(e.source, e.project_id, list(e.codes),
                    [str(f.get("message", "")) for f in e.findings if isinstance(f, dict)], agency_of_record(e.record))
        for e in rows
    ]


def by_agency(session: Session, run_id: str) -> list[dict[str, Any]]:
    """Per 实施机构: packages archived (verified) by this run, their bytes, and matters it quarantined."""
    table: dict[str, dict[str, Any]] = defaultdict(lambda: {"archived": 0, "bytes": 0, "quarantined": 0})
    rows = session.execute(
        select(MatterRecord.agency, func.count(), func.coalesce(func.sum(MatterRecord.total_bytes), 0))
        .where(MatterRecord.run_id == run_id, MatterRecord.state == MatterState.VERIFIED)
        .group_by(MatterRecord.agency)
    ).all()
    for agency, n, size in rows:
        table[agency]["archived"] += int(n)
        table[agency]["bytes"] += int(size)
    for q in quarantined_in_run(session, run_id):
        table[q.agency]["quarantined"] += 1
    return [{"agency": name, **counts} for name, counts in sorted(table.items())]
