"""The console's pages: 概览, 检索 and the 档案 page, 隔离, 审计, and the 推进 / 对账 reports.

Each route is a GET that names its page for `guard.require` (the role check), reads through
custody/web/page_queries.py or the audit functions, masks through `package_view.Masker` and renders a
template that extends base.html. A new page: a key in auth.PAGE_ROLES, a line in app.NAV, a route
here with `Depends(require("key"))`, a template.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from custody.web import page_queries
from custody.web.auth import Session
from custody.web.guard import require
from custody.web.package_view import Masker, names_of, package_view
from schemas.findings import code_text

router = APIRouter()
NIGHTS_PER_PAGE = 14
STATE_LABELS = {"numbered": "已编号", "transferred": "已写入", "verified": "已归档", "not_in_scope": "不归档",
                "quarantined": "隔离"}
RUN_LABELS = {"running": "进行中", "completed": "完成", "failed": "失败"}


def _render(request: Request, template: str, **values: Any) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, template, {"session": request.state.session, "state_labels": STATE_LABELS,
                            "run_labels": RUN_LABELS, **values})


def masker(request: Request, session: Session, names: list[str] | None = None) -> Masker:
    return Masker(unmasked=request.app.state.sessions.sees_personal_data(session), names=names)


def _zone(request: Request) -> Any:
    return request.app.state.settings.zone


@router.get("/")
def overview(request: Request, session: Annotated[Session, Depends(require("overview"))],
             page: Annotated[int, Query(ge=0, le=100_000)] = 0) -> Response:
    with request.app.state.ledger.read() as s:
        total, nights = page_queries.overview(s, _zone(request), page=page, per_page=NIGHTS_PER_PAGE)
    pages = max(1, -(-total // NIGHTS_PER_PAGE))
    return _render(request, "overview.html", nights=nights, total=total, page=page, pages=pages,
                   mask=masker(request, session))


def _date(value: str, name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(400, f"{name}: {value!r} 不是日期 (YYYY-MM-DD)") from None


@router.get("/search")
def search(
    request: Request, session: Annotated[Session, Depends(require("search"))],
    code: str = "", project: str = "", service: str = "", unit: str = "", date_from: str = "", date_to: str = "",
) -> Response:
    q = page_queries.SearchQuery(archival_code=code.strip()[:128], project_id=project.strip()[:128],
                            service=service.strip()[:255], agency=unit.strip()[:255],
                            date_from=_date(date_from, "办结起"), date_to=_date(date_to, "办结止"))
    total, found = 0, []
    if not q.empty:
        with request.app.state.ledger.read() as s:
            total, records = page_queries.search(s, q, _zone(request))
            found = [(r, masker(request, session, names_of(r.record))) for r in records]
    return _render(request, "search.html", q=q, total=total, found=found,
                   form={"code": code, "project": project, "service": service, "unit": unit,
                         "date_from": date_from, "date_to": date_to})


@router.get("/matter/{matter_id}")
def matter(request: Request, matter_id: int, session: Annotated[Session, Depends(require("search"))]) -> Response:
    from ledger.models import MatterRecord

    with request.app.state.ledger.read() as s:
        record = s.get(MatterRecord, matter_id)
        if record is None:
            raise HTTPException(404)
        events = page_queries.matter_events(s, record)
        s.expunge_all()
    mask = masker(request, session, names_of(record.record))
    view = None
    if record.package_key and record.state == "verified":
        view = package_view(request.app.state.repository, record.package_key, mask)
    ledger_files = _ledger_files(events)
    return _render(request, "matter.html", r=record, events=events, view=view, mask=mask,
                   ledger_files=ledger_files, payload=lambda p: mask(_compact(p)))


def _ledger_files(events: Any) -> dict[str, dict[str, Any]]:
    """{path in package: file entry} of the matter's last `verified` event: what the ledger vouches for."""
    files: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind == "verified":
            files = {f.get("path", ""): f for f in (e.payload or {}).get("files", []) if isinstance(f, dict)}
    return files


def _compact(payload: Any, limit: int = 400) -> str:
    import json

    if isinstance(payload, dict):  # the row snapshot is what `audit verify` compares; its digest says enough
        payload = {k: v for k, v in payload.items() if k != "row"}
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


@router.get("/quarantine")
def quarantine(request: Request, session: Annotated[Session, Depends(require("quarantine"))]) -> Response:
    rows = []
    with request.app.state.ledger.read() as s:
        total, entries = page_queries.open_quarantine(s)
        for e in entries:
            mask = masker(request, session, names_of(e.record))
            agency = (e.record or {}).get("agency") if isinstance(e.record, dict) else None
            reasons = [(c, code_text(c)) for c in (e.codes or [])]
            messages = [mask(f.get("message", "") if isinstance(f, dict) else str(f)) for f in (e.findings or [])]
            rows.append({"id": e.id, "source": e.source, "project_id": mask(e.project_id),
                         "agency": mask(agency or page_queries.UNKNOWN_UNIT), "reasons": reasons, "messages": messages,
                         "attempts": e.attempts, "since": e.created_at, "run_id": e.run_id})
    return _render(request, "quarantine.html", rows=rows, total=total)


@router.get("/audit")
def audit(request: Request, session: Annotated[Session, Depends(require("audit"))],
          verify: Annotated[int, Query(ge=0, le=1)] = 0) -> Response:
    from ledger import chain
    from ledger.anchors import CHECKPOINT_KIND

    with request.app.state.ledger.read() as s:
        head_seq, head_hash = chain.chain_head(s)
        events = page_queries.event_count(s)
        fixity = page_queries.last_event(s, "fixity-checked")
        checkpoint = page_queries.last_event(s, CHECKPOINT_KIND)
        s.expunge_all()
    result = None
    if verify:
        from custody.audit_verify import verify_ledger

        result = verify_ledger(request.app.state.ledger, request.app.state.repository)
    mask = masker(request, session)
    return _render(request, "audit.html", head_seq=head_seq, head_hash=head_hash, events=events, fixity=fixity,
                   checkpoint=checkpoint, result=result, mask=mask, code_text=code_text)
