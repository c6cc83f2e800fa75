"""冻结 (holds): every hold in force and released, who placed it, why, its scope and the records it
covers; archivists place and release holds here with a reason.

Placing and releasing call custody/disposition_holds.py exactly as `guidang disposition hold` and
`release` do, on every copy of the archive (custody/every_copy.py), in the signed-in user's name; the
form carries the session's CSRF token. A refusal of the rules (no reason, no record named by 档号)
is a 409 page naming the code.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from custody.web.auth import Session
from custody.web.guard import check_csrf, require
from custody.web.pages import MAX_ID, _clean, _render, masker
from schemas.findings import GuidangError, code_text
from schemas.personal import personal_names

router = APIRouter()
SCOPE_LABELS = {"archival_codes": "档号", "project_ids": "办件编号", "unit": "实施机构", "query": "题名或事项含"}
MAX_NAMED = 200  # 档号 or 办件编号 one form may name


def _names(session: Any, codes: list[str]) -> list[str]:
    """The persons' names of the covered records: a reason or a query may carry one (题名 does)."""
    from ledger import disposition_rules

    names: list[str] = []
    for rec in disposition_rules.records_by_codes(session, codes):
        names += personal_names(rec.record)
    return names


@router.get("/holds")
def holds(request: Request, session: Annotated[Session, Depends(require("holds"))],
          done: Annotated[str, Query(max_length=300)] = "") -> Response:
    from custody.disposition_holds import listing

    rows = listing(request.app.state.ledger, released_too=True)
    with request.app.state.ledger.read() as s:
        names = _names(s, sorted({c for h in rows for c in h["archival_codes"]}))
    mask = masker(request, session, names)
    shown = []
    for h in rows:
        scope = [(SCOPE_LABELS.get(k, k), mask("、".join(v) if isinstance(v, list) else v))
                 for k, v in (h["selector"] or {}).items()]
        shown.append({**h, "scope_text": scope, "reason": mask(h["reason"]),
                      "release_reason": mask(h["release_reason"] or "")})
    in_force = [h for h in shown if not h["released_at"]]
    released = [h for h in shown if h["released_at"]]
    return _render(request, "holds.html", in_force=in_force, released=released, done=mask(done),
                   may_hold=session.role in _roles("hold"))


def _roles(page: str) -> frozenset[str]:
    from custody.web.auth import PAGE_ROLES

    return PAGE_ROLES[page]


def _listed(value: str, name: str) -> tuple[str, ...]:
    """档号 or 办件编号 typed one per line or separated by commas or spaces."""
    items = tuple(v for v in re.split(r"[\s,，、；;]+", _clean(value.replace("\n", " ").replace("\r", " "),
                                                               name, 64 * MAX_NAMED)) if v)
    if len(items) > MAX_NAMED:
        raise HTTPException(400, f"{name}：一次最多 {MAX_NAMED} 个")
    return items


def refusal(exc: GuidangError, mask: Any) -> HTTPException:
    """A rule's refusal as the page says it: its codes in Chinese, the message; the same user
    approving is 403 (who may not), every other refusal 409 (not now, not this record)."""
    codes = [f.code for f in exc.findings]
    status = 403 if "D-SAME-USER" in codes else 409
    said = "；".join(f"{code_text(c)}（{c}）" for c in codes)
    return HTTPException(status, f"未执行：{said}。{mask(str(exc))}" if said else f"未执行：{mask(str(exc))}")


@router.post("/holds")
def place(request: Request, session: Annotated[Session, Depends(require("hold"))],
          csrf: Annotated[str, Form()] = "", reason: Annotated[str, Form(max_length=2000)] = "",
          codes: Annotated[str, Form(max_length=20_000)] = "", matters: Annotated[str, Form(max_length=20_000)] = "",
          unit: Annotated[str, Form(max_length=255)] = "",
          query: Annotated[str, Form(max_length=255)] = "") -> Response:
    from custody import disposition_holds
    from custody.every_copy import open_every_copy
    from ledger.disposition_rules import Selector

    check_csrf(session, csrf)
    sel = Selector(_listed(codes, "档号"), _listed(matters, "办件编号"), _clean(unit, "实施机构", 255) or None,
                   _clean(query, "题名或事项含", 255) or None)
    try:
        out = disposition_holds.place(request.app.state.ledger, open_every_copy(request.app.state.settings), sel,
                                      reason=_clean(reason, "理由", 2000), user=session.username)
    except GuidangError as exc:
        raise refusal(exc, masker(request, session)) from exc
    done = f"已冻结（编号 {out.hold_id}）：{len(out.archival_codes)} 件档案"
    done += _store_note(out)
    return RedirectResponse("/holds?" + urlencode({"done": done}), status_code=303)


@router.post("/holds/{hold_id}/release")
def release(request: Request, hold_id: Annotated[int, Path(ge=1, le=MAX_ID)],
            session: Annotated[Session, Depends(require("hold"))], csrf: Annotated[str, Form()] = "",
            reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    from custody import disposition_holds
    from custody.every_copy import open_every_copy

    check_csrf(session, csrf)
    try:
        out = disposition_holds.release(request.app.state.ledger, open_every_copy(request.app.state.settings),
                                        hold_id, reason=_clean(reason, "理由", 2000), user=session.username)
    except GuidangError as exc:
        raise refusal(exc, masker(request, session)) from exc
    done = f"已解除冻结 {hold_id}（{len(out.archival_codes)} 件档案）" + _store_note(out)
    return RedirectResponse("/holds?" + urlencode({"done": done}), status_code=303)


def _store_note(out: Any) -> str:
    if out.errors:
        return f"；存储库未能设置 {len(out.errors)} 个对象的法律保留，请稍后再试"
    if out.store_has_legal_hold:
        return f"；存储库法律保留（legal hold）涉及 {out.objects_locked} 个对象"
    return "；存储库无法律保留（文件系统），以账本冻结为准"
