"""The console's 推进 (rollout) and 对账 (reconciliation) pages: the same reports as
`guidang audit rollout` and `guidang audit reconcile`, built by custody/rollout.py and custody/reconcile.py.

Reconciliation asks the sources for their counts while the page is built (it reads, never writes);
the window defaults to the newest 办结 day the ledger holds (the last night with data) and is capped,
so a page view cannot turn into a year-long listing of every source.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from custody.web.auth import Session
from custody.web.guard import require
from custody.web.pages import _date, _render, masker

router = APIRouter()
MAX_RECONCILE_DAYS = 31
SOURCE_STATES = {"listed": "已逐件核对", "counted": "仅核对件数（源系统不提供清单）"}
NIGHT_LABELS = {"archived": "归档", "quarantined": "隔离", "waiting": "待启用", "not_in_scope": "不归档",
                "numbered": "已编号", "transferred": "已写入"}


def _today(request: Request) -> date:
    return datetime.now(request.app.state.settings.zone).date()


@router.get("/rollout")
def rollout(request: Request, session: Annotated[Session, Depends(require("rollout"))],
            as_of: Annotated[str, Query(max_length=10)] = "") -> Response:
    from custody.rollout import STATUS_TEXT, rollout_report, table_in_force

    settings, ledger = request.app.state.settings, request.app.state.ledger
    today = _date(as_of, "日期") or _today(request)
    report = rollout_report(settings, ledger, table_in_force(settings, ledger, today), today=today)
    return _render(request, "rollout.html", report=report.to_dict(), status_text=STATUS_TEXT,
                   night_labels=NIGHT_LABELS,
                   mask=masker(request, session))


def _last_day_with_data(request: Request) -> date | None:
    """The 办结 day of the newest matter the ledger holds, in the configured zone: the page opens on a
    day with something to reconcile, not on an empty yesterday that trivially balances."""
    from sqlalchemy import func, select

    from ledger.models import MatterRecord

    with request.app.state.ledger.read() as s:
        newest = s.scalar(select(func.max(MatterRecord.completed_at)))
    if newest is None:
        return None
    if newest.tzinfo is None:
        from datetime import UTC

        newest = newest.replace(tzinfo=UTC)
    return newest.astimezone(request.app.state.settings.zone).date()


@router.get("/reconcile")
def reconcile(request: Request, session: Annotated[Session, Depends(require("reconcile"))],
              date_from: Annotated[str, Query(alias="from", max_length=10)] = "",
              date_to: Annotated[str, Query(alias="to", max_length=10)] = "",
              unit: Annotated[str, Query(max_length=255)] = "") -> Response:
    from custody.reconcile import FINDING_TEXT
    from custody.reconcile import reconcile as run_reconcile

    settings = request.app.state.settings
    first = _date(date_from, "对账起") or _last_day_with_data(request) or _today(request) - timedelta(days=1)
    last = _date(date_to, "对账止") or first
    if last < first or (last - first).days >= MAX_RECONCILE_DAYS:
        raise HTTPException(400, f"对账期间须在 1 至 {MAX_RECONCILE_DAYS} 天之间")
    chosen = settings.unit_index.find(unit) if unit.strip() else None
    if unit.strip() and chosen is None:
        raise HTTPException(400, f"没有名为“{unit}”的实施机构")
    report: dict[str, Any] = run_reconcile(settings, request.app.state.ledger, first, last,
                                           unit=chosen.name if chosen else None).to_dict()
    report["findings"] = [{**f, "text": f["text"].split(" / ")[0]} for f in report["findings"]]
    return _render(request, "reconcile.html", report=report, finding_text=FINDING_TEXT, source_states=SOURCE_STATES,
                   units=[u.name for u in settings.units], unit=chosen.name if chosen else "",
                   mask=masker(request, session))
