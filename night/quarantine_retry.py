"""`guidang quarantine retry`: put quarantined matters through the stages again, as a run of its own.

An archivist fixes the cause (the source's record, the retention table) and asks for a retry; the
entries then go through the same triage-to-transfer stages as a night (night/engine.py), in a run
that the ledger records like any other, so a retried matter is numbered and stored the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger import holds, queries
from ledger.models import QuarantineEntry
from night.context import SourceSummary, close_run, open_run
from night.engine import work_through
from night.fanout import ThreadFanout
from night.quarantine import quarantine_invalid
from night.triage import record_waiting
from night.work import Work
from schemas.config import Settings
from schemas.findings import GuidangError
from schemas.model import InvalidMatter, Matter, mask_text


def retry_quarantined(settings: Settings, entry_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """Fetch each open entry's matter afresh from its source (the stored record when the source no
    longer has it) and put it through the stages again."""
    ctx = open_run(settings, parameters={"retry": list(entry_ids) if entry_ids else "all-open"})
    summaries: dict[str, SourceSummary] = {}
    failed: list[str] = []
    day = ctx.now.astimezone(settings.zone).date()
    try:
        with ctx.ledger.read() as s:
            entries = list(queries.open_quarantine_entries(s, entry_ids))
        by_source: dict[str, list[QuarantineEntry]] = {}
        for e in entries:
            by_source.setdefault(e.source, []).append(e)
        for name, group in by_source.items():
            summary = summaries.setdefault(name, SourceSummary())
            try:
                source = settings.source(name)
                work: list[Work] = []
                waiting: list[tuple[Matter, str]] = []
                for e in group:
                    item = ctx.connector(source).fetch_matter(e.project_id)
                    if item is None and "matter" in e.record:
                        item = Matter.model_validate(e.record["matter"])
                    summary.collected += 1
                    if item is None:
                        summary.unchanged += 1
                        continue
                    if isinstance(item, InvalidMatter):
                        quarantine_invalid(ctx, item, summary, force=True)
                        continue
                    reason = settings.unit_index.waiting_reason(item.agency, item.agency_code, item.matter_type, day)
                    if reason is not None:  # fixed, but its unit is not enabled: it waits like a night's would
                        waiting.append((item, reason.value))
                        with ctx.ledger.transaction() as s:
                            holds.resolve_quarantine(s, e.id, f"waiting: {reason.value}", run_id=ctx.run_id)
                        continue
                    with ctx.ledger.read() as s:
                        latest = queries.latest_version(s, item.source, item.project_id)
                    version = 1 if latest is None else latest.version + 1
                    work.append(Work.of(item, version, e.id))
                record_waiting(ctx, waiting, summary)
                work_through(ctx, source, work, summary, ThreadFanout())
            except GuidangError as exc:
                message = mask_text(f"{name}: {exc.__class__.__name__}: {exc}")
                summary.error = message
                failed.append(message)
    finally:
        result = close_run(ctx, summaries, failed=failed)
    return result
