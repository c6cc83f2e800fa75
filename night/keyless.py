"""Quarantine entries of source rows that had no 办件编号: how they leave the quarantine.

Such a row cannot be fetched again by its key, so an entry of one would otherwise stay open for
ever and be counted in the quarantine every night. Instead it is looked up among the source's rows
without an id at the record's update time: while the same record is still there the entry is held,
once the row was fixed (and is collected under its 办件编号) or deleted, the entry is resolved and
the summary says so.
"""

from __future__ import annotations

import logging
from datetime import UTC

from ledger import holds, queries
from ledger.models import QuarantineEntry
from night.context import RunContext, SourceSummary
from schemas.digest import json_digest
from schemas.errors import SourceUnavailable
from schemas.findings import GuidangError
from schemas.model import mask_text

log = logging.getLogger("guidang")


def is_without_id(e: QuarantineEntry) -> bool:
    """An entry of a source row that had no 办件编号 (named "(row n)"), kept as the invalid record."""
    return e.project_id.startswith("(row ") and "invalid" in e.record


def settle_without_id(ctx: RunContext, e: QuarantineEntry, summary: SourceSummary) -> bool:
    """Resolve `e` when the source no longer holds its record among the rows without an id at the
    record's update time (the row was fixed, and is collected under its 办件编号, or deleted);
    True when resolved. A source that cannot say, or a record without update time, leaves it open."""
    finder = getattr(ctx.connector(ctx.settings.source(e.source)), "rows_without_id", None)
    updated = e.source_updated_at
    if finder is None or updated is None:
        return False
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    if any(json_digest(i.raw) == e.content_hash for i in finder(updated)):
        return False
    why = "fixed or gone at the source: no row without 办件编号 holds this record any more"
    with ctx.ledger.transaction() as s:
        holds.resolve_quarantine(s, e.id, why, run_id=ctx.run_id)
    summary.resolved.append(f"#{e.id} {e.project_id}: {why}")
    return True


def settle_rows_without_id(ctx: RunContext, source: str, summary: SourceSummary) -> None:
    """After a night's collect of `source`: settle each open entry of a row without 办件编号, so
    that one fixed at the source leaves the quarantine instead of being counted in it for ever."""
    with ctx.ledger.read() as s:
        entries = [e for e in queries.open_quarantine_entries(s, None) if e.source == source and is_without_id(e)]
    for e in entries:
        try:
            settle_without_id(ctx, e, summary)
        except (SourceUnavailable, GuidangError) as exc:  # looked at again by the next night
            log.warning("quarantine entry #%s of %s: cannot be looked up now: %s", e.id, source, mask_text(str(exc)))
            return
