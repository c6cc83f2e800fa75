"""Triage: what to do with each collected record.

A source hands over everything completed in a window, including records it handed over before;
triage compares each with the ledger and keeps only new matters and new versions (补充材料), as
`Work` for staging; a record the canonical model refused is quarantined here, and a matter of a
unit or type not yet enabled is recorded as waiting (待启用).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ledger import queries
from ledger import waiting as ledger_waiting
from ledger.models import MatterState
from night.context import RunContext, SourceConfig, SourceSummary
from night.quarantine import quarantine_invalid
from night.window import Collected, Packed
from night.work import Work
from schemas.digest import json_digest
from schemas.model import InvalidMatter, Matter, mask_text

log = logging.getLogger("guidang")


def triage(
    ctx: RunContext, source: SourceConfig, items: Iterable[Collected], summary: SourceSummary
) -> list[Work]:
    """Decide, per collected record, whether it is new, a new version (补充材料), unchanged, or invalid.
    Each matter is unpacked on its own and only its packed form is kept."""
    work: list[Work] = []
    waiting: list[tuple[Packed, str]] = []
    day = ctx.now.astimezone(ctx.settings.zone).date()  # the night's date decides what is enabled
    rows = newest_rows(items, summary)
    for start in range(0, len(rows), LOOKUP_BATCH):
        batch = rows[start : start + LOOKUP_BATCH]
        latest, held = _known(ctx, [r for r in batch if isinstance(r, Packed)])
        for row in batch:
            if isinstance(row, InvalidMatter):
                quarantine_invalid(ctx, row, summary)
                continue
            item = row.load()
            h = item.content_hash()
            last, open_q = latest.get((item.source, item.project_id)), held.get((item.source, item.project_id))
            if open_q is not None and open_q.content_hash == h:
                summary.held += 1  # still quarantined as it is; `guidang quarantine retry` re-tries it
                continue
            if last is not None and last.content_hash == h:
                summary.unchanged += 1
                continue
            reason = ctx.settings.unit_index.waiting_reason(item.agency, item.agency_code, item.matter_type, day)
            if reason is not None:
                waiting.append((row, reason.value))
                continue
            if last is None:
                work.append(Work(row, 1, open_q.id if open_q else None))
            elif last.state in (MatterState.NUMBERED, MatterState.TRANSFERRED):
                summary.unchanged += 1  # the source changed a matter we are still finishing: next run versions it
            else:
                work.append(Work(row, last.version + 1, open_q.id if open_q else None))
    record_waiting(ctx, waiting, summary)
    return work


WAITING_BATCH = 200  # waiting matters recorded per ledger transaction
LOOKUP_BATCH = 500  # collected matters looked up in the ledger per query


def _known(ctx: RunContext, rows: list[Packed]) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
    """What the ledger knows of these matters, two queries for the lot instead of two per matter
    (queries per matter would be most of a large window's triage): each one's newest row
    (version, content hash, state) and its open quarantine entry (id, content hash)."""
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r.project_id)
    latest: dict[tuple[str, str], Any] = {}
    held: dict[tuple[str, str], Any] = {}
    with ctx.ledger.read() as s:
        for name, ids in by_source.items():
            latest.update(((name, k), v) for k, v in queries.latest_versions(s, name, ids).items())
            held.update(((name, k), v) for k, v in queries.open_quarantines(s, name, ids).items())
    return latest, held


def record_waiting(ctx: RunContext, waiting: list[tuple[Packed | Matter, str]], summary: SourceSummary) -> None:
    """Count and record the matters of units or types not yet enabled (待启用): the watermark passes
    them like any other, so the ledger is where they are found again when the unit is enabled.
    Packed ones are unpacked a batch at a time (a unit not yet enabled may have thousands)."""
    summary.waiting += len(waiting)
    for start in range(0, len(waiting), WAITING_BATCH):
        batch = [(p.load() if isinstance(p, Packed) else p, reason)
                 for p, reason in waiting[start : start + WAITING_BATCH]]
        for m, reason in batch:
            log.info("waiting %s: %s (%s, 事项类型 %s)", m.key, reason, mask_text(m.agency), m.matter_type)
        if ctx.dry_run:
            continue
        with ctx.ledger.transaction() as s:
            for m, reason in batch:
                ledger_waiting.record_waiting(s, m, reason, run_id=ctx.run_id)


def newest_rows(items: Iterable[Collected], summary: SourceSummary) -> list[Collected]:
    """One record per 办件编号, the newest: by the update column, then by the order the source gave.

    A system without a primary key re-sends a corrected row beside the old one, and a source that
    pages unstably repeats a record; archiving the first seen would lose the correction. Every row
    left out is counted (`superseded`) and logged with both update times, never dropped silently.
    """
    rows = list(items)
    newest: dict[str, int] = {}
    for n, item in enumerate(rows):
        best = newest.get(item.project_id)
        if best is None or _recency(item, n) >= _recency(rows[best], best):
            newest[item.project_id] = n
    kept = set(newest.values())
    for n, item in enumerate(rows):
        if n in kept:
            continue
        winner = rows[newest[item.project_id]]
        summary.superseded += 1
        same = type(item) is type(winner) and _fingerprint(item) == _fingerprint(winner)
        log.warning(
            "%s: 办件编号 given more than once in this collect; row %d (updated %s) superseded by row %d "
            "(updated %s)%s",
            item.key, n + 1, _when(item), newest[item.project_id] + 1, _when(winner),
            ", an identical repeat" if same else ", which is the one archived",
        )
    return [item for n, item in enumerate(rows) if n in kept]


def _recency(item: Collected, n: int) -> tuple[bool, datetime, int]:
    at = item.updated_at
    if at is not None and at.tzinfo is None:  # never compare naive and aware times
        at = at.replace(tzinfo=UTC)
    return at is not None, at or datetime.min.replace(tzinfo=UTC), n


def _fingerprint(item: Collected) -> str:
    return item.load().content_hash() if isinstance(item, Packed) else json_digest(item.raw)


def _when(item: Collected) -> str:
    return item.updated_at.isoformat() if item.updated_at else "unknown"


