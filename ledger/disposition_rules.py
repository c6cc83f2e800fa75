"""The ledger's side of disposition: holds (冻结), appraisal reviews (到期鉴定) and their decisions.

Like ledger/store.py, each function takes a Session and leaves the commit to its caller, and each
write appends its event to the hash chain; a change to a matter row (an extension, a destruction)
goes through `rows.matter_event`, so `audit verify` keeps checking the row against its last event.
The rules that protect a record live here, next to the writes they guard, so no caller can skip
them: 永久 is never destroyed, a held record is never decided for destruction nor destroyed, and
the approver is never one of the appraisers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger import queries
from ledger.chain import append_event, utcnow
from ledger.models import DispositionHold, DispositionItem, DispositionReview, HeldRecord, MatterRecord, MatterState
from ledger.rows import matter_event
from schemas.findings import Finding, GuidangError
from schemas.model import RetentionPeriod

KEPT_STATES = (MatterState.VERIFIED,)  # archived records a hold or a review may name
ORDER = {RetentionPeriod.D10: 10, RetentionPeriod.D30: 30, RetentionPeriod.PERMANENT: 10_000}


class DispositionRefused(GuidangError):
    """A step the rules forbid (a held or 永久 record, the same user approving, ...): nothing changed."""


def refused(code: str, where: str, message: str) -> DispositionRefused:
    finding = Finding(code, where, message)
    return DispositionRefused(str(finding), [finding])


@dataclass(frozen=True, slots=True)
class Selector:
    """Which archived records a hold names: any combination, all given parts must match."""

    archival_codes: tuple[str, ...] = ()  # 档号
    project_ids: tuple[str, ...] = ()  # 办件编号 (matter)
    unit: str | None = None  # 实施机构
    query: str | None = None  # words in 题名 or 事项名称

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("archival_codes", list(self.archival_codes)), ("project_ids",
                list(self.project_ids)), ("unit", self.unit), ("query", self.query)) if v}


def select_records(session: Session, sel: Selector) -> Sequence[MatterRecord]:
    """The archived records `sel` names, in 档号 order; destroyed ones are no longer held."""
    if not sel.to_dict():
        raise refused("D-NO-RECORDS", "selector", "name records by 档号, matter, unit or query")
    q = select(MatterRecord).where(MatterRecord.state.in_(KEPT_STATES))
    if sel.archival_codes:
        q = q.where(MatterRecord.archival_code.in_(list(sel.archival_codes)))
    if sel.project_ids:
        q = q.where(MatterRecord.project_id.in_(list(sel.project_ids)))
    if sel.unit:
        q = q.where(MatterRecord.agency == sel.unit)
    if sel.query:
        like = f"%{sel.query}%"
        q = q.where(or_(MatterRecord.title.like(like), MatterRecord.service_name.like(like)))
    return session.scalars(q.order_by(MatterRecord.archival_code)).all()


# ---------------------------------------------------------------- holds (冻结)


def place_hold(session: Session, records: Sequence[MatterRecord], sel: Selector, *, reason: str,
               user: str) -> DispositionHold:
    if not reason.strip():
        raise refused("D-NO-REASON", "hold", "a hold needs a reason")
    if not records and sel.archival_codes:
        raise refused("D-NO-RECORDS", str(sel.to_dict()), "no archived record matches")
    hold = DispositionHold(selector=sel.to_dict(), reason=reason, placed_by=user, placed_at=utcnow())
    session.add(hold)
    session.flush()
    for rec in records:
        session.add(HeldRecord(hold_id=hold.id, matter_id=rec.id, archival_code=rec.archival_code or ""))
    append_event(session, "hold-placed", payload={
        "hold": hold.id, "selector": hold.selector, "reason": reason, "by": user,
        "archival_codes": [r.archival_code for r in records]})
    return hold


def release_hold(session: Session, hold_id: int, *, reason: str, user: str) -> DispositionHold:
    if not reason.strip():
        raise refused("D-NO-REASON", f"hold {hold_id}", "a release needs a reason")
    hold = session.get(DispositionHold, hold_id, with_for_update=True)
    if hold is None or hold.released_at is not None:
        raise refused("D-HOLD-STATE", f"hold {hold_id}", "no such hold, or it was released already")
    hold.released_by, hold.released_at, hold.release_reason = user, utcnow(), reason
    append_event(session, "hold-released", payload={
        "hold": hold.id, "reason": reason, "by": user, "archival_codes": held_codes(session, hold.id)})
    return hold


def held_codes(session: Session, hold_id: int) -> list[str]:
    return list(session.scalars(select(HeldRecord.archival_code).where(HeldRecord.hold_id == hold_id)
                                .order_by(HeldRecord.archival_code)))


def records_by_codes(session: Session, codes: Sequence[str]) -> Sequence[MatterRecord]:
    if not codes:
        return []
    return session.scalars(select(MatterRecord).where(MatterRecord.archival_code.in_(list(codes)))
                           .order_by(MatterRecord.archival_code)).all()


def holds(session: Session, *, released_too: bool = False) -> Sequence[DispositionHold]:
    q = select(DispositionHold).order_by(DispositionHold.id)
    if not released_too:
        q = q.where(DispositionHold.released_at.is_(None))
    return session.scalars(q).all()


def active_holds(session: Session, matter_ids: Sequence[int]) -> dict[int, list[int]]:
    """{matter id: ids of the holds in force on it} for those of `matter_ids` that are held: named
    when the hold was placed, or inside the scope of a hold by matter, unit or query (`in_scope`),
    which goes on covering what is archived after it was placed."""
    out: dict[int, set[int]] = {}
    if not matter_ids:
        return {}
    q = (select(HeldRecord.matter_id, HeldRecord.hold_id)
         .join(DispositionHold, DispositionHold.id == HeldRecord.hold_id)
         .where(DispositionHold.released_at.is_(None), HeldRecord.matter_id.in_(list(matter_ids))))
    for matter_id, hold_id in session.execute(q):
        out.setdefault(matter_id, set()).add(hold_id)
    scoped = [h for h in holds(session) if is_scope_hold(h.selector)]
    if scoped:
        for rec in session.scalars(select(MatterRecord).where(MatterRecord.id.in_(list(matter_ids)))):
            for h in scoped:
                if in_scope(h.selector, rec):
                    out.setdefault(rec.id, set()).add(h.id)
    return {m: sorted(ids) for m, ids in out.items()}


def is_scope_hold(selector: dict[str, Any]) -> bool:
    """A hold by matter, unit or query (no 档号 named): it covers every record its scope matches,
    archived before or after it was placed. A hold by 档号 covers exactly the records it names."""
    return bool(selector) and not selector.get("archival_codes")


def in_scope(selector: dict[str, Any], rec: MatterRecord) -> bool:
    """Whether the record matches a hold's selector, every given part (as `select_records` does)."""
    if selector.get("archival_codes") and rec.archival_code not in selector["archival_codes"]:
        return False
    if selector.get("project_ids") and rec.project_id not in selector["project_ids"]:
        return False
    if selector.get("unit") and rec.agency != selector["unit"]:
        return False
    words = (selector.get("query") or "").casefold()
    return not words or words in (rec.title or "").casefold() or words in (rec.service_name or "").casefold()


def covered_codes(session: Session, hold: DispositionHold) -> list[str]:
    """The 档号 a hold covers now: those named when it was placed, and for a scope hold every
    archived record its scope matches since (the console's 冻结 page lists both)."""
    named = set(held_codes(session, hold.id))
    if is_scope_hold(hold.selector):
        sel = Selector(project_ids=tuple(hold.selector.get("project_ids") or ()), unit=hold.selector.get("unit"),
                       query=hold.selector.get("query"))
        named |= {r.archival_code or "" for r in select_records(session, sel)}
    return sorted(named)


# ---------------------------------------------------------------- reviews (到期鉴定)


def open_review(session: Session, before: date, *, user: str, fonds: str | None = None,
                unit: str | None = None, matter_type: str | None = None) -> DispositionReview:
    """A review of the records due before `before` (the filters narrow it) that no unfinished review
    holds already; 永久 never falls due (queries.due_for_appraisal)."""
    busy = set(session.scalars(
        select(DispositionItem.matter_id).join(DispositionReview, DispositionReview.id == DispositionItem.review_id)
        .where(DispositionReview.status != "completed")))
    due = [r for r in queries.due_for_appraisal(session, before)
           if r.id not in busy and (fonds is None or r.fonds == fonds) and (unit is None or r.agency == unit)
           and (matter_type is None or r.matter_type == matter_type)]
    criteria = {k: v for k, v in (("fonds", fonds), ("unit", unit), ("matter_type", matter_type)) if v}
    if not due:
        raise refused("D-NO-RECORDS", f"due before {before.isoformat()} {criteria or ''}".strip(),
                      "no archived record falls due that no open appraisal holds already")
    review = DispositionReview(before=before.isoformat(), criteria=criteria, status="open", opened_by=user,
                               opened_at=utcnow())
    session.add(review)
    session.flush()
    for rec in due:
        session.add(DispositionItem(review_id=review.id, matter_id=rec.id, archival_code=rec.archival_code or ""))
    append_event(session, "disposition-opened", payload={
        "review": review.id, "before": review.before, "criteria": criteria, "by": user,
        "archival_codes": [r.archival_code for r in due]})
    return review


def review(session: Session, review_id: int, *, for_update: bool = False) -> DispositionReview:
    found = session.get(DispositionReview, review_id, with_for_update=for_update)
    if found is None:
        raise refused("D-REVIEW-STATE", f"appraisal {review_id}", "no such appraisal")
    return found


def items(session: Session, review_id: int) -> Sequence[DispositionItem]:
    return session.scalars(select(DispositionItem).where(DispositionItem.review_id == review_id)
                           .order_by(DispositionItem.archival_code)).all()


def reviews(session: Session) -> Sequence[DispositionReview]:
    return session.scalars(select(DispositionReview).order_by(DispositionReview.id)).all()


def _period(rec: MatterRecord) -> RetentionPeriod | None:
    return RetentionPeriod(rec.retention_period) if rec.retention_period else None


def check_destroyable(session: Session, rec: MatterRecord) -> None:
    """永久 and held records are refused, whoever asks, at each step that leads to destruction."""
    where = f"档号 {rec.archival_code}"
    if _period(rec) is RetentionPeriod.PERMANENT:
        raise refused("D-PERMANENT", where, "保管期限 永久: never destroyed")
    held = active_holds(session, [rec.id]).get(rec.id)
    if held:
        raise refused("D-HELD", where, f"under hold {', '.join(map(str, held))} (冻结): release it first")


def decide(session: Session, review_id: int, archival_code: str, decision: str, *, reason: str, user: str,
           new_period: RetentionPeriod | None = None) -> DispositionItem:
    """Record an appraiser's decision for one record: `destroy`, or `extend` to a longer `new_period`."""
    rv = review(session, review_id, for_update=True)
    where = f"档号 {archival_code}"
    if rv.status != "open":
        raise refused("D-REVIEW-STATE", f"appraisal {review_id}", f"is {rv.status}: decisions are closed")
    if not reason.strip():
        raise refused("D-NO-REASON", where, "a decision needs a reason")
    item = session.scalars(select(DispositionItem).where(
        DispositionItem.review_id == review_id, DispositionItem.archival_code == archival_code)).first()
    if item is None:
        raise refused("D-NOT-IN-REVIEW", where, f"not part of appraisal {review_id}")
    rec = session.get(MatterRecord, item.matter_id)
    if rec is None:
        raise refused("D-NOT-IN-REVIEW", where, "its matter row is gone")
    if decision == "destroy":
        check_destroyable(session, rec)
        new_period = None
    elif decision == "extend":
        old = _period(rec)
        if new_period is None or old is None or ORDER[new_period] <= ORDER[old]:
            raise refused("D-BAD-EXTENSION", where, f"保管期限 is {old.label if old else '-'}; "
                          f"give a longer one (--period D30 or Y), not {new_period.label if new_period else '-'}")
    else:
        raise refused("D-REVIEW-STATE", where, f"unknown decision {decision!r} (destroy or extend)")
    item.decision, item.new_period, item.reason = decision, new_period.value if new_period else None, reason
    item.decided_by, item.decided_at = user, utcnow()
    append_event(session, "disposition-decided", source=rec.source, project_id=rec.project_id,
                 archival_code=rec.archival_code, payload={
                     "review": review_id, "decision": decision, "new_period": item.new_period,
                     "reason": reason, "by": user})
    return item


def approve(session: Session, review_id: int, *, user: str,
            extend_to: Callable[[MatterRecord, RetentionPeriod], str | None] | None = None) -> DispositionReview:
    """A second person approves every decision of the review; extensions take effect now (their rows
    get the new 保管期限 and disposition date), destructions wait for `destroy`. `extend_to(rec,
    period)` returns the new disposition date (ISO) or None for 永久."""
    rv = review(session, review_id, for_update=True)
    if rv.status != "open":
        raise refused("D-REVIEW-STATE", f"appraisal {review_id}", f"is {rv.status}, not open")
    its = items(session, review_id)
    undecided = [i.archival_code for i in its if i.decision is None]
    if undecided:
        raise refused("D-UNDECIDED", f"appraisal {review_id}",
                      f"{len(undecided)} undecided: {', '.join(undecided[:5])}")
    appraisers = {i.decided_by for i in its} | {rv.opened_by}
    if user in appraisers:
        raise refused("D-SAME-USER", f"appraisal {review_id}",
                      f"{user} opened or decided it; another person must approve")
    for i in its:
        rec = session.get(MatterRecord, i.matter_id, with_for_update=True)
        if rec is None:
            continue
        if i.decision == "destroy":
            check_destroyable(session, rec)
        elif i.decision == "extend" and i.new_period:
            period = RetentionPeriod(i.new_period)
            old = (rec.retention_period, rec.disposition_date)
            rec.retention_period = period.value
            rec.disposition_date = extend_to(rec, period) if extend_to else None
            i.outcome = "extended"
            matter_event(session, "retention-extended", rec, run_id=None, payload={
                "review": review_id, "from": {"period": old[0], "disposition_date": old[1]},
                "reason": i.reason, "decided_by": i.decided_by, "approved_by": user})
    rv.status, rv.approved_by, rv.approved_at = "approved", user, utcnow()
    append_event(session, "disposition-approved", payload={
        "review": review_id, "by": user, "appraisers": sorted(a for a in appraisers if a),
        "destroy": [i.archival_code for i in its if i.decision == "destroy"],
        "extend": [i.archival_code for i in its if i.decision == "extend"]})
    return rv
