"""The console's application: `create_app(settings)` wires the ledger (read only), the archive
repository, the sessions and the page routes into one FastAPI app.

Read-only by construction: the ledger is opened without migrating it, the only routes that accept a
POST are sign-in and sign-out (which touch the in-memory sessions only), and every other route is a
GET that calls read queries. Every response carries headers that keep the pages out of frames and
caches (they show personal data to the roles allowed to see it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

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
]


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
    from custody.web import downloads, pages, reports, signin
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
        when=lambda t: t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if t else "",
        day=lambda t: t.astimezone(zone).date().isoformat() if t else "",
        size=_size,
    )
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(resources.files("custody.web") / "static")), name="static")

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if exc.download:
            return PlainTextResponse("需要登录 (sign-in required)", status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if exc.download:
            return PlainTextResponse("无权访问 (forbidden for this role)", status_code=403)
        return templates.TemplateResponse(request, "forbidden.html", {"session": exc.session, "page": exc.page},
                                          status_code=403)

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Exception) -> Response:
        return HTMLResponse("<!doctype html><title>404</title><p>页面不存在 (not found)</p>", status_code=404)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
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
    return app


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
