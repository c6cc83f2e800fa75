"""The one gate every page and download passes: `require(page)` (a FastAPI dependency) finds the
session and checks its role against `auth.PAGE_ROLES`. No session: a page redirects to sign-in
(303), a download answers 401; the wrong role: 403."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from custody.web.auth import PAGE_ROLES, SESSION_COOKIE, Session, may_open


class NotSignedIn(Exception):
    def __init__(self, download: bool) -> None:
        self.download = download


class Forbidden(Exception):
    def __init__(self, session: Session, page: str, download: bool) -> None:
        self.session, self.page, self.download = session, page, download


def require(page: str, *, download: bool = False) -> Callable[[Request], Session]:
    """A dependency for a route of `page` (a key of PAGE_ROLES): returns the signed-in session."""
    if page not in PAGE_ROLES:
        raise KeyError(f"page {page!r} has no roles in PAGE_ROLES")

    def check(request: Request) -> Session:
        session = request.app.state.sessions.current(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise NotSignedIn(download)
        request.state.session = session
        if not may_open(session.role, page):
            raise Forbidden(session, page, download)
        return session

    return check


def check_csrf(session: Session, token: str) -> None:
    """A form's token against the session's; 403 when it differs (a form posted from another site)."""
    import hmac

    from fastapi import HTTPException

    if not hmac.compare_digest(token.encode("utf-8"), session.csrf.encode("utf-8")):
        raise HTTPException(403, "表单已失效（CSRF 校验未通过），请刷新页面后再试")
