"""鉴定 (appraisal of records due, 到期鉴定): the appraisals and their state; one appraisal's records
with each decision, its reason and who made it; archivists (the 鉴定小组) open an appraisal and record
decisions, an approver (分管领导) approves it, and an approved appraisal's 销毁清单 downloads as HTML
or PDF (A4).

Each step is the command line's own code: `disposition_rules.open_review` and `decide` (as
`guidang disposition open` and `decide`), `custody.appraisal.approve_review` on every copy of the
archive (as `approve`), `custody.destruction_list` (as `list`), in the signed-in user's name. The
ledger refuses an approval by anyone who opened the appraisal or decided one of its records
(D-SAME-USER): the console answers that 403 with the rule in words. The destruction itself stays
on the command line (`guidang disposition destroy`), run where the store's answers can be watched.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path as FsPath
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from custody.web.auth import PAGE_ROLES, Session
from custody.web.guard import check_csrf, require
from custody.web.holds_page import refusal
from custody.web.pages import MAX_ID, _clean, _date, _render, masker
from schemas.findings import GuidangError
from schemas.model import RetentionPeriod
from schemas.personal import personal_names

router = APIRouter()
STATUS_LABELS = {"open": "鉴定中", "approved": "已审批", "completed": "已销毁完毕"}
DECISION_LABELS = {"destroy": "销毁", "extend": "延长保管期限"}
OUTCOME_LABELS = {"extended": "已延期", "destroying": "销毁中", "destroyed": "已销毁", "blocked": "暂缓（受阻）"}
PERIODS = [(p.value, p.label) for p in (RetentionPeriod.D30, RetentionPeriod.PERMANENT)]
MAX_DECIDED = 500  # records one decision form may name


@router.get("/appraisals")
def appraisals(request: Request, session: Annotated[Session, Depends(require("appraisals"))],
               done: Annotated[str, Query(max_length=300)] = "") -> Response:
    from ledger import disposition_rules

    rows = []
    with request.app.state.ledger.read() as s:
        for rv in disposition_rules.reviews(s):
            its = disposition_rules.items(s, rv.id)
            rows.append({"review": rv.id, "status": rv.status, "before": rv.before, "criteria": rv.criteria or {},
                         "opened_by": rv.opened_by, "opened_at": rv.opened_at, "approved_by": rv.approved_by,
                         "approved_at": rv.approved_at, "records": len(its),
                         "decided": sum(1 for i in its if i.decision), "destroy": sum(1 for i in its
                                                                                     if i.decision == "destroy")})
    return _render(request, "appraisals.html", rows=list(reversed(rows)), done=done, status_labels=STATUS_LABELS,
                   may_open=session.role in PAGE_ROLES["appraise"])


@router.post("/appraisals")
def open_appraisal(request: Request, session: Annotated[Session, Depends(require("appraise"))],
                   csrf: Annotated[str, Form()] = "", before: Annotated[str, Form(max_length=10)] = "",
                   fonds: Annotated[str, Form(max_length=64)] = "", unit: Annotated[str, Form(max_length=255)] = "",
                   matter_type: Annotated[str, Form(max_length=16)] = "") -> Response:
    from ledger import disposition_rules

    check_csrf(session, csrf)
    day = _date(before, "到期日期早于")
    if day is None:
        raise HTTPException(400, "到期日期早于：请填写日期（YYYY-MM-DD）")
    try:
        with request.app.state.ledger.transaction() as s:
            rv = disposition_rules.open_review(s, day, user=session.username, fonds=_clean(fonds, "全宗号", 64) or None,
                                               unit=_clean(unit, "实施机构", 255) or None,
                                               matter_type=_clean(matter_type, "事项类型", 16) or None)
            rid, count = rv.id, len(disposition_rules.items(s, rv.id))
    except GuidangError as exc:
        raise refusal(exc, masker(request, session)) from exc
    return RedirectResponse(f"/appraisals/{rid}?" + urlencode({"done": f"已开始鉴定 {rid}：{count} 件到期档案"}),
                            status_code=303)


@router.get("/appraisals/{review_id}")
def appraisal(request: Request, review_id: Annotated[int, Path(ge=1, le=MAX_ID)],
              session: Annotated[Session, Depends(require("appraisals"))],
              done: Annotated[str, Query(max_length=300)] = "") -> Response:
    from custody.appraisal import describe
    from ledger import disposition_rules

    ledger = request.app.state.ledger
    try:
        rv = describe(ledger, review_id)["reviews"][0]
    except GuidangError as exc:
        raise HTTPException(404, f"鉴定 {review_id} 不存在") from exc
    with ledger.read() as s:
        recs = {r.archival_code: r for r in disposition_rules.records_by_codes(
            s, [i["archival_code"] for i in rv["items"]])}
        held = disposition_rules.active_holds(s, [r.id for r in recs.values()])
        s.expunge_all()
    names = [n for r in recs.values() for n in personal_names(r.record)]
    mask = masker(request, session, names)
    rows = []
    for i in rv["items"]:
        r = recs.get(i["archival_code"])
        rows.append({**i, "id": r.id if r else None, "title": mask((r.title or r.service_name) if r else ""),
                     "period": RetentionPeriod(r.retention_period).label if r and r.retention_period else "",
                     "due": r.disposition_date if r else "", "state": r.state if r else "",
                     "held": held.get(r.id, []) if r else [], "reason": mask(i["reason"] or "")})
    appraisers = sorted({i["decided_by"] for i in rv["items"] if i["decided_by"]} | {rv["opened_by"]})
    return _render(request, "appraisal.html", rv=rv, rows=rows, done=mask(done), status_labels=STATUS_LABELS,
                   decision_labels=DECISION_LABELS, outcome_labels=OUTCOME_LABELS, periods=PERIODS,
                   appraisers=appraisers, may_decide=session.role in PAGE_ROLES["appraise"] and rv["status"] == "open",
                   may_approve=session.role in PAGE_ROLES["approve"] and rv["status"] == "open",
                   is_appraiser=session.username in appraisers)


@router.post("/appraisals/{review_id}/decide")
def decide(request: Request, review_id: Annotated[int, Path(ge=1, le=MAX_ID)],
           session: Annotated[Session, Depends(require("appraise"))], csrf: Annotated[str, Form()] = "",
           code: Annotated[list[str] | None, Form()] = None,
           decision: Annotated[str, Form(max_length=16)] = "", period: Annotated[str, Form(max_length=4)] = "",
           reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    from ledger import disposition_rules

    check_csrf(session, csrf)
    codes = [_clean(c, "档号", 128) for c in code or [] if c.strip()]
    if not codes:
        raise HTTPException(400, "请勾选要作出鉴定结论的档案")
    if len(codes) > MAX_DECIDED:
        raise HTTPException(400, f"一次最多 {MAX_DECIDED} 件")
    if decision not in DECISION_LABELS:
        raise HTTPException(400, "鉴定结论：请选择销毁或延长保管期限")
    new = None
    if decision == "extend":
        if period not in {p for p, _ in PERIODS}:
            raise HTTPException(400, "延长保管期限：请选择新的保管期限")
        new = RetentionPeriod(period)
    try:
        with request.app.state.ledger.transaction() as s:
            for c in codes:
                disposition_rules.decide(s, review_id, c, decision, reason=_clean(reason, "理由", 2000),
                                         user=session.username, new_period=new)
    except GuidangError as exc:
        raise refusal(exc, masker(request, session)) from exc
    done = f"已记录鉴定结论（{DECISION_LABELS[decision]}）：{len(codes)} 件"
    return RedirectResponse(f"/appraisals/{review_id}?" + urlencode({"done": done}), status_code=303)


@router.post("/appraisals/{review_id}/approve")
def approve(request: Request, review_id: Annotated[int, Path(ge=1, le=MAX_ID)],
            session: Annotated[Session, Depends(require("approve"))], csrf: Annotated[str, Form()] = "") -> Response:
    from custody.appraisal import approve_review
    from custody.every_copy import open_every_copy

    check_csrf(session, csrf)
    try:
        out = approve_review(request.app.state.ledger, open_every_copy(request.app.state.settings), review_id,
                             user=session.username)
    except GuidangError as exc:
        raise refusal(exc, masker(request, session)) from exc
    done = f"已审批：销毁 {len(out['destroy'])} 件，延长保管期限 {len(out['extend'])} 件"
    return RedirectResponse(f"/appraisals/{review_id}?" + urlencode({"done": done}), status_code=303)


@router.get("/appraisals/{review_id}/destruction-list.{kind}")
def destruction_list(request: Request, review_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                     kind: Annotated[str, Path(pattern="^(html|pdf)$")],
                     session: Annotated[Session, Depends(require("appraisals", download=True))]) -> Response:
    """The 销毁清单 as `guidang disposition list` writes it, names of persons masked for a masked role."""
    from custody.destruction_list import gather, write_html, write_pdf
    from ledger import disposition_rules

    ledger = request.app.state.ledger
    try:
        data = gather(ledger, review_id)
    except GuidangError as exc:
        raise HTTPException(404, f"鉴定 {review_id} 不存在") from exc
    if data.approved_by is None:
        raise HTTPException(409, f"鉴定 {review_id} 尚未审批：审批后才有销毁清单")
    with ledger.read() as s:
        names = [n for r in disposition_rules.records_by_codes(s, [row["档号"] for row in data.rows])
                 for n in personal_names(r.record)]
    mask = masker(request, session, names)
    data = dataclasses.replace(data, rows=[{**row, "题名": mask(row["题名"]), "销毁理由": mask(row["销毁理由"])}
                                           for row in data.rows])
    with tempfile.TemporaryDirectory(prefix="guidang-list-") as folder:
        out = FsPath(folder, f"list.{kind}")
        try:
            write_pdf(data, out) if kind == "pdf" else write_html(data, out)
        except GuidangError as exc:  # no Chinese font for the PDF: the HTML prints the same list
            raise HTTPException(409, f"未能生成 PDF：{exc}") from exc
        body = out.read_bytes()
    media = "application/pdf" if kind == "pdf" else "text/html; charset=utf-8"
    name = f"销毁清单-鉴定{review_id}.{kind}"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})
