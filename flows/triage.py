"""Triage: what to do with each collected record, and quarantine, the one way a matter is set aside.

A source hands over everything completed in a window, including records it handed over before;
triage compares each with the ledger and keeps only new matters and new versions (补充材料).
Quarantine is written here once and used by every later stage that finds a defect (staging,
resume, transfer), so a quarantined matter is counted, logged masked and recorded the same way
whichever stage caught it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flows.context import RunContext, SourceConfig, SourceSummary
from ledger import queries, store
from ledger.models import MatterState
from schemas.crashpoints import crashpoint
from schemas.digest import json_digest
from schemas.findings import Finding
from schemas.model import InvalidMatter, Matter, mask_text

log = logging.getLogger("guidang")


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
            quarantine_invalid(ctx, item, summary)
            continue
        h = item.content_hash()
        with ctx.ledger.read() as s:
            latest = queries.latest_version(s, item.source, item.project_id)
            open_q = queries.open_quarantine(s, item.source, item.project_id)
        if open_q is not None and open_q.content_hash == h:
            summary.held += 1  # still quarantined as it is; `guidang quarantine retry` re-tries it
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


def quarantine_invalid(ctx: RunContext, item: InvalidMatter, summary: SourceSummary, *, force: bool = False) -> None:
    """A record the canonical model refused; unless `force`d, an unchanged one is not quarantined twice."""
    findings = [Finding(p.code, item.key, mask_text(p.message)) for p in item.findings]
    raw_hash = json_digest(item.raw)
    with ctx.ledger.read() as s:
        open_q = queries.open_quarantine(s, item.source, item.project_id)
    if not force and open_q is not None and open_q.content_hash == raw_hash:
        summary.held += 1
        return
    record = {"invalid": item.model_dump(mode="json")}
    hold = store.Hold(item.source, item.project_id, raw_hash, item.updated_at, record)
    _put_in_quarantine(ctx, summary, item.key, hold, findings)


def quarantine_matter(ctx: RunContext, m: Matter, findings: list[Finding], summary: SourceSummary) -> None:
    hold = store.Hold(m.source, m.project_id, m.content_hash(), m.updated_at, {"matter": m.model_dump(mode="json")})
    _put_in_quarantine(ctx, summary, m.key, hold, findings)


def _put_in_quarantine(
    ctx: RunContext, summary: SourceSummary, key: str, hold: store.Hold, findings: list[Finding]
) -> None:
    """Count, log (masked) and record one quarantined matter with everything needed to retry it."""
    summary.quarantined += 1
    summary.reasons.update({f.code for f in findings})
    log.warning("quarantined %s: %s", key, mask_text("; ".join(str(f) for f in findings)))
    if ctx.dry_run:
        return
    with ctx.ledger.transaction() as s:
        store.quarantine(s, hold, findings, run_id=ctx.run_id)
    crashpoint("quarantined")
