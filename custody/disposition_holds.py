"""Holds (冻结): archived records kept from disposition while a matter is disputed, audited or
investigated, placed and released with a reason and a name, and mirrored on the store.

The ledger's hold is what the rules obey (ledger/disposition_rules.py refuses a held record at every step
towards destruction); the store's legal hold is the second lock, set on every object of each held
package where the store has one (S3 Object Lock), so that not even a console of the store deletes
them. Releasing clears the store's legal hold only where nothing else wants it: another hold still
in force, or 永久, whose objects carry a legal hold from the night they were stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.repositories.base import Repository, RepositoryError
from ledger import disposition_rules
from ledger.disposition_rules import Selector
from ledger.store import Ledger
from schemas.model import RetentionPeriod


@dataclass
class HoldOutcome:
    hold_id: int
    archival_codes: list[str]
    objects_locked: int = 0  # objects whose store legal hold was set (or cleared, on release)
    store_has_legal_hold: bool = False
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # objects whose legal hold the store did not take

    def to_dict(self) -> dict[str, Any]:
        return {"hold": self.hold_id, "archival_codes": self.archival_codes, "objects": self.objects_locked,
                "store_legal_hold": self.store_has_legal_hold, "notes": self.notes, "errors": self.errors}


def _package_keys(repository: Repository, package_key: str) -> list[str]:
    return [o.key for o in repository.list(package_key.rstrip("/") + "/")]


def _set_on_store(repository: Repository, package_keys: list[str], on: bool, out: HoldOutcome) -> None:
    """The store's legal hold of each object; an object the store refuses is named in `errors` (the
    ledger's hold stands either way; the operator places or releases again once the store answers)."""
    for package_key in package_keys:
        for key in _package_keys(repository, package_key):
            try:
                if not repository.set_legal_hold(key, on):
                    out.notes.append("the repository has no legal hold (a filesystem): the ledger's hold alone applies")
                    return
            except RepositoryError as exc:
                out.errors.append(f"{key}: {exc}")
                continue
            out.store_has_legal_hold = True
            out.objects_locked += 1


def place(ledger: Ledger, repository: Repository, sel: Selector, *, reason: str, user: str) -> HoldOutcome:
    """Record the hold (one event naming every record), then set the store's legal hold on each of
    their objects. A crash between the two leaves the ledger's hold in force, which is what the
    rules obey; placing a hold on the same records again sets what the store still lacks."""
    with ledger.transaction() as s:
        records = list(disposition_rules.select_records(s, sel))
        hold = disposition_rules.place_hold(s, records, sel, reason=reason, user=user)
        out = HoldOutcome(hold.id, [r.archival_code or "" for r in records])
        targets = [r.package_key for r in records if r.package_key]
    _set_on_store(repository, targets, True, out)
    return out


def release(ledger: Ledger, repository: Repository, hold_id: int, *, reason: str, user: str) -> HoldOutcome:
    """Release the hold (its event), then clear the store's legal hold of records no other hold and
    no 永久 keeps."""
    with ledger.transaction() as s:
        hold = disposition_rules.release_hold(s, hold_id, reason=reason, user=user)
        codes = disposition_rules.covered_codes(s, hold)  # a scope hold's later records too: the night held them
        rows = disposition_rules.records_by_codes(s, codes)
        still = disposition_rules.active_holds(s, [r.id for r in rows])
        free = [r.package_key for r in rows if r.package_key and r.id not in still
                and r.retention_period != RetentionPeriod.PERMANENT.value]
    out = HoldOutcome(hold_id, codes)
    kept = len(codes) - len(free)
    if kept:
        out.notes.append(f"{kept} record(s) keep the store's legal hold (永久, or another hold in force)")
    _set_on_store(repository, free, False, out)
    return out


def listing(ledger: Ledger, *, released_too: bool = False) -> list[dict[str, Any]]:
    """Every hold (in force, or all), with the records it covers now (a hold by matter, unit or query
    covers the records archived since it was placed too), for `guidang disposition holds` and the console."""
    with ledger.read() as s:
        return [
            {"hold": h.id, "selector": h.selector, "reason": h.reason, "placed_by": h.placed_by,
             "placed_at": h.placed_at.isoformat(timespec="seconds"), "released_by": h.released_by,
             "released_at": h.released_at.isoformat(timespec="seconds") if h.released_at else None,
             "release_reason": h.release_reason, "scope": disposition_rules.is_scope_hold(h.selector),
             "archival_codes": disposition_rules.covered_codes(s, h)}
            for h in disposition_rules.holds(s, released_too=released_too)
        ]
