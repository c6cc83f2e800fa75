"""Appraisal of records due (到期鉴定) as the bureau runs it: approval, and what the store must learn
from it. The rules and the events are the ledger's (ledger/disposition_rules.py); this module adds what
an approval changes outside the ledger, and reads a review back for the command line.

An extension moves the record's disposition date; where the store keeps a retention date (S3 Object
Lock) the package's objects get the later date too, so that the store never lets go of a record the
archive decided to keep. A 永久 extension sets the legal hold that 永久 objects carry from the start.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from connectors.repositories.base import Repository
from ledger import disposition_rules
from ledger.models import MatterRecord
from ledger.store import Ledger
from retention import disposition_date
from schemas.model import RetentionPeriod


def _new_date(rec: MatterRecord, period: RetentionPeriod) -> str | None:
    year = rec.year or rec.completed_at.year
    return disposition_date(year, period)


def approve_review(ledger: Ledger, repository: Repository, review_id: int, *, user: str) -> dict[str, Any]:
    """Approve (ledger/disposition.approve refuses what the rules forbid), then extend the store's
    locks of the extended records."""
    with ledger.transaction() as s:
        disposition_rules.approve(s, review_id, user=user, extend_to=_new_date)
        its = disposition_rules.items(s, review_id)
        extended = [(i.archival_code, i.new_period) for i in its if i.decision == "extend"]
        rows = {r.archival_code: r for r in disposition_rules.records_by_codes(s, [c for c, _ in extended])}
        targets = [(rows[c].package_key or "", rows[c].disposition_date, p) for c, p in extended if c in rows]
        destroy = [i.archival_code for i in its if i.decision == "destroy"]
    locked = 0
    for package_key, until, period in targets:
        for obj in repository.list(package_key.rstrip("/") + "/"):
            if period == RetentionPeriod.PERMANENT.value:
                locked += repository.set_legal_hold(obj.key, True)
            elif until:
                locked += repository.extend_retention(obj.key, date.fromisoformat(until))
    return {"review": review_id, "approved_by": user, "destroy": destroy,
            "extend": [c for c, _ in extended], "objects_relocked": locked}


def _item(i: Any) -> dict[str, Any]:
    return {"archival_code": i.archival_code, "decision": i.decision, "new_period": i.new_period,
            "reason": i.reason, "decided_by": i.decided_by,
            "decided_at": i.decided_at.isoformat(timespec="seconds") if i.decided_at else None,
            "outcome": i.outcome, "outcome_note": i.outcome_note}


def describe(ledger: Ledger, review_id: int | None = None) -> dict[str, Any]:
    """Every review (or one, with its records) as plain data."""
    with ledger.read() as s:
        chosen = ([disposition_rules.review(s, review_id)] if review_id is not None
                  else list(disposition_rules.reviews(s)))
        out = []
        for rv in chosen:
            entry: dict[str, Any] = {
                "review": rv.id, "status": rv.status, "before": rv.before, "criteria": rv.criteria,
                "opened_by": rv.opened_by, "opened_at": rv.opened_at.isoformat(timespec="seconds"),
                "approved_by": rv.approved_by,
                "approved_at": rv.approved_at.isoformat(timespec="seconds") if rv.approved_at else None,
            }
            if review_id is not None:
                entry["items"] = [_item(i) for i in disposition_rules.items(s, rv.id)]
            out.append(entry)
    return {"reviews": out}
