"""A matter row under the hash chain: its archival facts, their one digest, and the check of both.

The `matters` table is what the archive relies on (保管期限, disposition date, content hash, 档号,
package key…), but a row is updated in place, so the chain alone would not notice an `UPDATE`
issued behind guidang's back. Every write that changes a row therefore appends a matter event
(`matter_event`) whose payload carries the row's facts as they now are and their digest
(`row_digest`, the canonical-JSON SHA-256 of `row_facts`), plus the retention version and rule that
decided it. `verify_rows` recomputes every current row's digest and compares it with the row's
last matter event, naming the row and each field that differs.

Batched ledger writes only have to go through `matter_event` to be covered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.chain import append_event
from ledger.models import Event, MatterRecord
from schemas.digest import json_digest
from schemas.findings import Finding
from schemas.model import mask_text

# Every column of the row except its surrogate id; the two JSON columns (the collected record and
# the appraisal) enter by their own digest so that the payload stays small.
FACT_FIELDS: tuple[str, ...] = tuple(
    c.key for c in MatterRecord.__table__.columns if c.key not in ("id", "record", "appraisal")
)
JSON_FIELDS: tuple[str, ...] = ("record", "appraisal")


def _plain(value: Any) -> Any:
    """One spelling per value whatever the backend returned: UTC ISO times, enum values."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, Enum):
        return value.value
    return value


def row_facts(rec: MatterRecord) -> dict[str, Any]:
    """The row's archival facts as plain JSON values, the input of `row_digest`."""
    facts = {name: _plain(getattr(rec, name)) for name in FACT_FIELDS}
    for name in JSON_FIELDS:
        facts[f"{name}_digest"] = json_digest(getattr(rec, name) or {})
    return facts


def facts_digest(facts: dict[str, Any]) -> str:
    return json_digest(facts)


def row_digest(rec: MatterRecord) -> str:
    return facts_digest(row_facts(rec))


def matter_event(
    session: Session, kind: str, rec: MatterRecord, *, run_id: str | None, payload: dict[str, Any] | None = None
) -> Event:
    """Append the event of a change to `rec`, carrying the row as it is after the change.

    The caller has flushed a new row (it needs its id); later changes are in the object already."""
    facts = row_facts(rec)
    body = {
        **(payload or {}),
        "matter_id": rec.id,
        "retention_version": rec.retention_version,
        "retention_rule": rec.retention_row,
        "row": facts,
        "row_digest": facts_digest(facts),
    }
    return append_event(
        session,
        kind,
        run_id=run_id,
        source=rec.source,
        project_id=rec.project_id,
        archival_code=rec.archival_code,
        payload=body,
    )


class RowAnchors:
    """Collects, while the chain is walked, each matter's last recorded digest: (event seq, digest)."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[int, str]] = {}

    def __call__(self, ev: Event) -> None:
        payload = ev.payload or {}
        matter_id, digest = payload.get("matter_id"), payload.get("row_digest")
        if isinstance(matter_id, int) and isinstance(digest, str):
            self.last[matter_id] = (ev.seq, digest)


def _rows(session: Session, batch: int) -> Iterator[MatterRecord]:
    last_id = 0
    while True:
        rows = session.scalars(
            select(MatterRecord).where(MatterRecord.id > last_id).order_by(MatterRecord.id).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        session.expunge_all()


def _name(rec: MatterRecord) -> str:
    code = f", 档号 {rec.archival_code}" if rec.archival_code else ""
    return f"matter row {rec.id} ({rec.source}/{rec.project_id} v{rec.version}{code})"


def _shown(value: Any) -> str:
    text = "NULL" if value is None else repr(value)
    text = mask_text(text)
    return text if len(text) <= 80 else text[:77] + "…"


def differing_fields(recorded: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{field: (as the event recorded it, as the row holds it now)} for each field that differs."""
    names = sorted(set(recorded) | set(now))
    return {n: (recorded.get(n), now.get(n)) for n in names if recorded.get(n) != now.get(n)}


def verify_rows(session: Session, anchors: RowAnchors, *, batch: int = 2000) -> tuple[int, list[Finding]]:
    """Compare every matter row with its last matter event (collected by `anchors` during the chain
    walk). Returns (rows checked, findings): A-ROW-ALTERED naming the fields, A-ROW-UNRECORDED for a
    row no event records, A-ROW-MISSING for a row an event records and the table no longer has."""
    findings: list[Finding] = []
    seen: set[int] = set()
    count = 0
    for rec in _rows(session, batch):
        count += 1
        seen.add(rec.id)
        anchor = anchors.last.get(rec.id)
        if anchor is None:
            findings.append(Finding(
                "A-ROW-UNRECORDED", _name(rec),
                "no event of the chain records this row: it was inserted outside guidang, or written "
                "before row digests were recorded",
                details={"matter_id": rec.id},
            ))
            continue
        seq, digest = anchor
        facts = row_facts(rec)
        if facts_digest(facts) == digest:
            continue
        ev = session.get(Event, seq)
        recorded = dict((ev.payload or {}).get("row") or {}) if ev is not None else {}
        if facts_digest(recorded) != digest:  # the event itself was edited: verify_chain names it
            recorded = {}
        diff = differing_fields(recorded, facts) if recorded else {}
        fields = ", ".join(f"{n} {_shown(old)} → {_shown(new)}" for n, (old, new) in diff.items())
        findings.append(Finding(
            "A-ROW-ALTERED", _name(rec),
            f"differs from event {seq} that last recorded it: "
            + (fields or "its recorded facts are unreadable (the event was altered)"),
            details={"matter_id": rec.id, "event": seq, "fields": sorted(diff)},
        ))
    for matter_id, (seq, _digest) in sorted(anchors.last.items()):
        if matter_id not in seen:
            ev = session.get(Event, seq)
            who = f"{ev.source}/{ev.project_id}" if ev is not None else "?"
            code = f", 档号 {ev.archival_code}" if ev is not None and ev.archival_code else ""
            findings.append(Finding(
                "A-ROW-MISSING", f"matter row {matter_id} ({who}{code})",
                f"event {seq} records this row, but the matters table no longer has it (deleted)",
                details={"matter_id": matter_id, "event": seq},
            ))
    return count, findings

