"""The console's application: `create_app(settings)` wires the ledger (read only), the archive
repository, the sessions and the page routes into one FastAPI app.

No package is ever written: the ledger is opened without migrating it and the repository is read.
What the console adds to the ledger are events in the chain (failed sign-ins and lockouts, each
view and download of a document, a quarantine retry asked for by operations), so that the bureau can
audit the console's use as it audits the nights, and the disposition steps the command line takes
too (a hold placed or released, an appraisal opened, decided, approved), by the same code, which
also sets the store's legal hold or later retention date on every copy of the archive. Every
response, an error's too, carries headers that keep the pages out of frames and caches (they show
personal data to the roles allowed to see it), and every error is a Chinese page, never a bare 500.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from custody.web.auth import MIN_KEY_LENGTH, PAGE_ROLES, Clock, Sessions
from custody.web.guard import Forbidden, NotSignedIn
from schemas.findings import GuidangError
from schemas.web_config import ROLE_LABELS

if TYPE_CHECKING:
    from schemas.config import Settings

# (path, label, page in PAGE_ROLES): the navigation bar, in order; a new page adds one line here.
NAV: list[tuple[str, str, str]] = [
    ("/", "概览", "overview"),
    ("/search", "检索", "search"),
    ("/quarantine", "隔离", "quarantine"),
    ("/audit", "审计", "audit"),
    ("/downloads", "下载", "downloads"),
    ("/rollout", "推进", "rollout"),
    ("/reconcile", "对账", "reconcile"),
    ("/holds", "冻结", "holds"),
    ("/appraisals", "鉴定", "appraisals"),
    ("/copies", "副本", "copies"),
]


log = logging.getLogger(__name__)
ERROR_TITLES = {400: "请求参数有误", 401: "需要登录", 403: "无权访问", 404: "页面不存在", 405: "不支持此请求方法",
                409: "不予提供", 410: "已销毁", 413: "请求过大", 422: "请求参数有误", 429: "请求过于频繁",
                500: "服务器内部错误"}


def _default_phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class ConsoleConfigError(GuidangError):
    """The console cannot start: no `web:` section, or the signing key's variable unset or too short."""


def signing_key(settings: Settings) -> bytes:
    if settings.web is None:
        raise ConsoleConfigError("guidang.yaml has no `web:` section (users, secret_key_env): the console "
                                 "has no one to let in")
    name = settings.web.secret_key_env
    value = os.environ.get(name, "")
    if not value:
        raise ConsoleConfigError(f"environment variable {name} (web.secret_key_env) is not set: it holds the "
                                 "key that signs session cookies")
    if len(value) < MIN_KEY_LENGTH:
        raise ConsoleConfigError(f"environment variable {name} (web.secret_key_env) is shorter than "
                                 f"{MIN_KEY_LENGTH} characters")
    return value.encode("utf-8")


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """The console over `settings`' ledger and repository. ConsoleConfigError when it cannot start."""
    from connectors.repositories import open_repository
    from custody.web import (
        appraisal_pages,
        copies_page,
        downloads,
        holds_page,
        pages,
        quarantine_page,
        reports,
        signin,
        use,
    )
    from ledger.store import Ledger

    key = signing_key(settings)
    if settings.web is None:
        raise ConsoleConfigError("the configuration has no web: section")
    clock = clock or Clock()
    ledger = Ledger(settings.resolve_url(settings.ledger_url), migrate=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ledger.close()

    app = FastAPI(title="guidang 档案局控制台", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock
    app.state.sessions = Sessions(settings.web, key, clock.now)
    app.state.ledger = ledger
    app.state.repository = open_repository(settings.repository, base_dir=settings.base_dir)
    templates = Jinja2Templates(directory=str(resources.files("custody.web") / "templates"))
    templates.env.globals.update(nav=NAV, page_roles=PAGE_ROLES, role_labels=ROLE_LABELS)
    zone = settings.zone
    templates.env.filters.update(
        when=lambda t: _moment(t).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if t else "",
        day=lambda t: _moment(t).astimezone(zone).date().isoformat() if t else "",
        size=_size,
    )
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(resources.files("custody.web") / "static")), name="static")

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if exc.download:
            return error_page(request, 401, "需要登录：请先登录控制台，再打开此下载")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if exc.download:
            return error_page(request, 403, f"无权访问：“{ROLE_LABELS[exc.session.role]}”角色不能打开此文件或下载")
        return templates.TemplateResponse(request, "forbidden.html", {"session": exc.session, "page": exc.page},
                                          status_code=403)

    def error_page(request: Request, status: int, detail: str) -> Response:
        title = ERROR_TITLES.get(status, "请求有误" if status < 500 else "服务器内部错误")
        return templates.TemplateResponse(
            request, "error.html", {"session": getattr(request.state, "session", None), "title": title,
                                    "detail": detail or title}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != _default_phrase(exc.status_code) else ""
        return error_page(request, exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def _bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        names = "、".join(sorted({str(e.get("loc", ["", "?"])[-1]) for e in exc.errors()}))
        return error_page(request, 400, f"参数 {names} 的值无效（超出范围或格式不对）")

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            response = await call_next(request)
        except Exception:  # logged, and answered in Chinese with the same headers as every page
            log.exception("console: %s %s failed", request.method, request.url.path)
            response = error_page(request, 500, "处理请求时出错，已记录在控制台日志中")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = "default-src 'self'; form-action 'self'; frame-ancestors 'none'"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(reports.router)
    app.include_router(downloads.router)
    app.include_router(use.router)
    app.include_router(quarantine_page.router)
    app.include_router(holds_page.router)
    app.include_router(appraisal_pages.router)
    app.include_router(copies_page.router)
    return app


def _moment(t: Any) -> Any:
    """A datetime, or an ISO text of one (report dicts carry text), for the zone filters."""
    from datetime import UTC, datetime

    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _size(n: int | None) -> str:
    n = n or 0
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= factor:
            return f"{n / factor:.2f} {unit}（{n} 字节）"
    return f"{n} 字节"


def _quote(target: str) -> str:
    from urllib.parse import quote

    return quote(target, safe="")


def context(request: Request, **values: Any) -> dict[str, Any]:
    """What every page template gets: the session (for the nav and the sign-out form) and the values."""
    return {"session": getattr(request.state, "session", None), **values}
