"""隔离 (quarantine): the matters held back, grouped and filtered by reason and by 实施机构, each with
its next step in words (the `next:` text of its reason code in schemas/codes/quarantine.yaml), and for
operations a 重试 button doing what `guidang quarantine retry ID` does.

The retry is the console's one write besides its audit events: a POST carrying the session's CSRF
token, recorded in the chain (`quarantine-retry-requested`: who, which entry) before it runs, and
run by night/quarantine_retry.py as its own run, exactly as the command line would.
"""

from __future__ import annotations

import hmac
from collections import Counter
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from custody.web import page_queries as queries
from custody.web.auth import Session
from custody.web.guard import require
from custody.web.pages import _clean, _render, masker
from schemas.findings import GuidangError, code_text
from schemas.personal import agency_of, applicant_name, personal_names

router = APIRouter()
MAX_ID = 2**63 - 1


@router.get("/quarantine")
def quarantine(request: Request, session: Annotated[Session, Depends(require("quarantine"))],
               reason: Annotated[str, Query(max_length=64)] = "", unit: Annotated[str, Query(max_length=255)] = "",
               done: Annotated[str, Query(max_length=200)] = "") -> Response:
    reason, unit = _clean(reason, "原因", 64), _clean(unit, "实施机构", 255)
    rows: list[dict[str, Any]] = []
    by_reason: Counter[str] = Counter()
    by_unit: Counter[str] = Counter()
    settings = request.app.state.settings
    with request.app.state.ledger.read() as s:
        total, entries = queries.open_quarantine(s)
        for e in entries:
            agency = agency_of(e.record, source_columns(settings, e.source, "agency")) or queries.UNKNOWN_UNIT
            codes = list(e.codes or [])
            by_reason.update(codes)
            by_unit[agency] += 1
            if (reason and reason not in codes) or (unit and unit != agency):
                continue
            name_keys = source_columns(settings, e.source, "applicant_name")
            mask = masker(request, session, personal_names(e.record, name_keys))
            rows.append({
                "id": e.id, "source": e.source, "project_id": mask(e.project_id), "agency": agency,
                "applicant": mask(applicant_name(e.record, name_keys)),
                "reasons": [(c, code_text(c), code_text(c, "next") if code_text(c, "next") != c else "")
                            for c in codes],
                "messages": [mask(f.get("message", "") if isinstance(f, dict) else str(f)) for f in e.findings or []],
                "attempts": e.attempts, "since": e.created_at, "run_id": e.run_id})
    return _render(request, "quarantine.html", rows=rows, total=total, reason=reason, unit=unit, done=done,
                   reasons=[(c, code_text(c), n) for c, n in by_reason.most_common()],
                   units=sorted(by_unit.items()), may_retry=session.role in RETRY_ROLES)


RETRY_ROLES = frozenset({"operations"})


def source_columns(settings: Any, source: str, field: str) -> tuple[str, ...]:
    """The column a SQL source reads `field` from (its `columns:`), where its refused rows keep it."""
    for s in settings.sources:
        if s.name == source:
            column = (getattr(s, "columns", None) or {}).get(field)
            return (column,) if column else ()
    return ()


@router.post("/quarantine/{entry_id}/retry")
def retry(request: Request, entry_id: Annotated[int, Path(ge=1, le=MAX_ID)],
          session: Annotated[Session, Depends(require("retry"))], csrf: Annotated[str, Form()] = "") -> Response:
    from ledger import queries as ledger_queries
    from ledger.chain import append_event
    from night.quarantine_retry import retry_quarantined

    if not hmac.compare_digest(csrf, session.csrf):
        raise HTTPException(403, "表单已失效（CSRF 校验未通过），请刷新页面后再试")
    with request.app.state.ledger.transaction() as s:
        entry = next(iter(ledger_queries.open_quarantine_entries(s, [entry_id])), None)
        if entry is None:
            raise HTTPException(404, f"隔离编号 {entry_id} 不存在或已解决")
        append_event(s, "quarantine-retry-requested", source=entry.source, project_id=entry.project_id,
                     payload={"user": session.username, "role": session.role, "entry": entry_id})
    try:
        summary = retry_quarantined(request.app.state.settings, [entry_id])
    except GuidangError as exc:
        raise HTTPException(409, f"重试未能进行：{masker(request, session)(str(exc))}") from exc
    totals = summary.get("totals") or {}
    done = (f"已重试隔离编号 {entry_id}：归档 {totals.get('archived', 0)} 件，"
            f"仍隔离 {totals.get('quarantined', 0)} 件")
    return RedirectResponse("/quarantine?" + urlencode({"done": done}), status_code=303)
