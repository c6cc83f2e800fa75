"""The console's pages: 概览, 检索 and the 档案 page, 隔离, 审计, and the 推进 / 对账 reports.

Each route is a GET that names its page for `guard.require` (the role check), reads through
custody/web/page_queries.py or the audit functions, masks through `package_view.Masker` and renders a
template that extends base.html. A new page: a key in auth.PAGE_ROLES, a line in app.NAV, a route
here with `Depends(require("key"))`, a template.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from custody.web import page_queries
from custody.web.auth import Session
from custody.web.guard import require
from custody.web.package_view import Masker, names_of, package_view
from custody.web.use import ledger_documents
from schemas.findings import code_text
from schemas.personal import applicant_name

router = APIRouter()
NIGHTS_PER_PAGE = 14
RESULTS_PER_PAGE = 50
# the console's own events in the chain, as the 审计 page names them
CONSOLE_KINDS = {"document-viewed": "查阅利用件", "document-downloaded": "下载原件",
                 "document-refused": "拒绝提供（摘要不符）", "sign-in-failed": "登录失败",
                 "sign-in-locked": "登录锁定", "quarantine-retry-requested": "隔离重试"}
# ledger event kinds as the pages name them (the kind itself stays beside it: it is what `audit log --kind` takes)
EVENT_LABELS = {"numbered": "编号", "transferred": "写入存储库", "verified": "校验归档", "acknowledged": "来源已确认",
                "in-batch": "编入移交批次", "quarantined": "隔离", "quarantine-resolved": "隔离解除",
                "not-in-scope": "不归档", "waiting": "待启用", "waiting-resolved": "待启用解除",
                "run-started": "运行开始", "run-completed": "运行结束", "run-failed": "运行失败",
                "watermark-advanced": "采集进度推进", "retention-imported": "导入保管期限表",
                "transfer-batch-begun": "开始移交批次", "transfer-batch": "移交批次", "checkpoint": "账本检查点",
                "checkpoint-stored": "检查点已存储", "checkpoint-absent": "检查点缺失",
                "run-failed-after": "运行结束后判定失败", "retention-extended": "延长保管期限",
                "batch-destruction-noted": "批次销毁记录", "fixity-checked": "固定性检查",
                "enablement-backfill": "启用后补采",
                "hold-placed": "冻结", "hold-released": "解除冻结", "disposition-opened": "开始到期鉴定",
                "disposition-decided": "鉴定意见", "disposition-approved": "鉴定审批",
                "disposition-completed": "销毁完成", "destruction-begun": "开始销毁", "destroyed": "已销毁",
                "destruction-blocked": "销毁受阻", "fixity-repaired": "副本修复", "replica-caught-up": "副本补齐",
                "replica-left-out": "副本本次未写入",
                **CONSOLE_KINDS}
PAYLOAD_LABELS = {"matter_id": "办件行", "item_number": "件号", "retention_period": "保管期限",
                  "retention_rule": "规则行号", "retention_version": "保管期限表版本", "package_key": "存储位置",
                  "bytes": "字节数", "files": "文件数", "batch_id": "批次号", "content_hash": "内容摘要",
                  "codes": "原因", "reason": "原因", "user": "用户", "role": "角色", "path": "文件", "copy": "副本",
                  "sm3": "SM3", "marker_sha256": "完成标记摘要", "entry": "隔离编号", "attempts": "尝试次数",
                  "version": "版本", "archival_code": "档号", "watermark": "水印", "at": "时间"}
STATE_LABELS = {"numbered": "已编号", "transferred": "已写入", "verified": "已归档", "not_in_scope": "不归档",
                "quarantined": "隔离", "destroyed": "已销毁", "destroying": "销毁中"}
RUN_LABELS = {"running": "进行中", "completed": "完成", "failed": "失败"}


def _render(request: Request, template: str, **values: Any) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, template, {"session": request.state.session, "state_labels": STATE_LABELS,
                            "event_labels": EVENT_LABELS,
                            "run_labels": RUN_LABELS, **values})


def masker(request: Request, session: Session, names: list[str] | None = None) -> Masker:
    return Masker(unmasked=request.app.state.sessions.sees_personal_data(session), names=names)


def _zone(request: Request) -> Any:
    return request.app.state.settings.zone


@router.get("/")
def overview(request: Request, session: Annotated[Session, Depends(require("overview"))],
             page: Annotated[int, Query(ge=0, le=100_000)] = 0) -> Response:
    from custody.web.overview_queries import overview as nights_overview

    with request.app.state.ledger.read() as s:
        columns = tuple(sorted({c for src in request.app.state.settings.sources
                                if (c := (getattr(src, "columns", None) or {}).get("agency"))}))
        total, nights = nights_overview(s, _zone(request), page=page, per_page=NIGHTS_PER_PAGE,
                                        agency_columns=columns)
    pages = max(1, -(-total // NIGHTS_PER_PAGE))
    return _render(request, "overview.html", nights=nights, total=total, page=page, pages=pages,
                   mask=masker(request, session))


FIRST_DAY, LAST_DAY = date(1949, 10, 1), date(2999, 12, 31)  # what a date in a search may be
MAX_ID = 2**63 - 1  # the largest id a ledger row can have (BIGINT)


def _date(value: str, name: str) -> date | None:
    """A date typed in a form, or None when blank; 400 when it is no date or outside the years any
    matter can have (0001-01-01 or 9999-12-31 would overflow a moment in the configured zone)."""
    value = _clean(value, name, 10)
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{name}：“{value}”不是日期（应为 YYYY-MM-DD）") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(400, f"{name}：{value} 超出可查询的范围（{FIRST_DAY} 至 {LAST_DAY}）")
    return day


def _clean(value: str, name: str, limit: int) -> str:
    """A typed text, trimmed and cut to `limit`; 400 for a control character (a NUL would otherwise
    be dropped on the way to SQL and match every matter)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise HTTPException(400, f"{name}：含有控制字符，不能检索")
    return value.strip()[:limit]


@router.get("/search")
def search(
    request: Request, session: Annotated[Session, Depends(require("search"))],
    code: str = "", project: str = "", title: str = "", applicant: str = "", service: str = "", unit: str = "",
    date_from: str = "", date_to: str = "", page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    q = page_queries.SearchQuery(archival_code=_clean(code, "档号", 128), project_id=_clean(project, "办件编号", 128),
                            title=_clean(title, "题名", 255), applicant=_clean(applicant, "申请人", 255),
                            service=_clean(service, "事项", 255), agency=_clean(unit, "实施机构", 255),
                            date_from=_date(date_from, "办结起"), date_to=_date(date_to, "办结止"))
    if q.date_from and q.date_to and q.date_from > q.date_to:
        raise HTTPException(400, f"办结起 {q.date_from} 晚于办结止 {q.date_to}")
    total, found = 0, []
    if not q.empty:
        with request.app.state.ledger.read() as s:
            total, records = page_queries.search(s, q, _zone(request), offset=(page - 1) * RESULTS_PER_PAGE,
                                            limit=RESULTS_PER_PAGE)
            found = [(r, masker(request, session, names_of(r.record)), applicant_name(r.record)) for r in records]
    form = {"code": code, "project": project, "title": title, "applicant": applicant, "service": service,
            "unit": unit, "date_from": date_from, "date_to": date_to}
    pages = max(1, -(-total // RESULTS_PER_PAGE))
    link = "/search?" + urlencode({k: v for k, v in form.items() if v})
    return _render(request, "search.html", q=q, total=total, found=found, form=form, page=page, pages=pages,
                   first=(page - 1) * RESULTS_PER_PAGE + 1, link=link)


@router.get("/matter/{matter_id}")
def matter(request: Request, matter_id: Annotated[int, Path(ge=1, le=MAX_ID)],
           session: Annotated[Session, Depends(require("search"))]) -> Response:
    from ledger.models import MatterRecord

    with request.app.state.ledger.read() as s:
        record = s.get(MatterRecord, matter_id)
        if record is None:
            raise HTTPException(404)
        events = page_queries.matter_events(s, record)
        s.expunge_all()
    mask = masker(request, session, names_of(record.record))
    view = None
    if record.package_key and record.state in ("verified", "destroyed"):  # a destroyed one keeps its 元数据
        view = package_view(request.app.state.repository, record.package_key, mask)
    ledger_files = _ledger_files(events)
    numbers = {f["path"]: n for n, f in enumerate(ledger_documents(events), start=1)}
    from custody.web.report_text import in_chinese

    return _render(request, "matter.html", r=record, events=events, view=view, mask=mask, in_chinese=in_chinese,
                   ledger_files=ledger_files, numbers=numbers, payload=lambda p: mask(_compact(p)),
                   tomb=tombstone(events) if record.state == "destroyed" else None)


def tombstone(events: Any) -> dict[str, Any] | None:
    """What the `destroyed` event says of a destroyed record: when, by whom, under which appraisal
    and approval, and the digests of every file deleted and kept (the tombstone stored beside them)."""
    for e in reversed(list(events)):
        if e.kind == "destroyed":
            p = e.payload or {}
            stone = p.get("tombstone") or {}
            return {"at": e.at, "by": p.get("by"), "review": p.get("review"), "approved_by": p.get("approved_by"),
                    "decided_by": p.get("decided_by"), "reason": p.get("reason"),
                    "deleted": stone.get("deleted") or [], "kept": stone.get("kept") or [],
                    "sha256": stone.get("sha256")}
    return None


def _ledger_files(events: Any) -> dict[str, dict[str, Any]]:
    """{path in package: file entry} of the matter's last `verified` event: what the ledger vouches for."""
    files: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind == "verified":
            files = {f.get("path", ""): f for f in (e.payload or {}).get("files", []) if isinstance(f, dict)}
    return files


def _compact(payload: Any, limit: int = 400) -> str:
    """An event's payload in words: known keys by their Chinese names, lists by their length, digests
    cut to 16 characters; the row snapshot (what `audit verify` compares) and its digest left out."""
    if not isinstance(payload, dict):
        return str(payload)[:limit]
    parts = []
    for k, v in sorted(payload.items()):
        if k in ("row", "row_digest"):
            continue
        if isinstance(v, list):
            v = "、".join(map(str, v)) if all(isinstance(x, str) for x in v) else f"{len(v)} 项"
        elif isinstance(v, dict):
            v = f"{len(v)} 项"
        elif isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
            v = v[:16] + "…"
        parts.append(f"{PAYLOAD_LABELS.get(k, k)}：{v}")
    text = "；".join(parts)
    return text if len(text) <= limit else text[:limit] + "…"


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
        console_events = page_queries.recent_events(s, list(CONSOLE_KINDS))
        s.expunge_all()
    result = None
    if verify:
        from custody.audit_verify import verify_ledger

        result = verify_ledger(request.app.state.ledger, request.app.state.repository)
    mask = masker(request, session)
    return _render(request, "audit.html", head_seq=head_seq, head_hash=head_hash, events=events, fixity=fixity,
                   checkpoint=checkpoint, result=result, mask=mask, code_text=code_text,
                   console_events=console_events, console_kinds=CONSOLE_KINDS)
