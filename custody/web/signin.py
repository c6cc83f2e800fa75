"""登录 / 退出: the console's only POST routes. Both check a CSRF token; neither touches the ledger.

A wrong password and an unknown user get the same message and take the same time (auth.PasswordCheck);
failures are throttled per user name and per address (custody/web/throttle.py), and each failure and
each lockout is an event in the ledger's chain (`sign-in-failed`, `sign-in-locked`) for the 审计 page
and `guidang audit log`. `next` only ever sends the browser to a path of this console.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from custody.web.auth import LOGIN_NONCE_COOKIE, SESSION_COOKIE, Sessions
from custody.web.guard import NotSignedIn
from custody.web.throttle import Verdict

router = APIRouter()
BAD_SIGN_IN = "用户名或密码错误"
BAD_FORM = "表单已失效，请重新登录（CSRF 校验未通过）"
TOO_MANY = "登录失败次数过多，请 {seconds} 秒后再试"


def _safe_next(target: str | None) -> str:
    """A path of this console, or "/": never another site, also not through a tab, newline or space
    that a browser would drop on the way to "//another.site"."""
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 33 or ord(c) == 127 for c in target)):
        return "/"
    return target


def _form(request: Request, *, next_: str, message: str = "", status: int = 200, username: str = "",
          retry_after: int = 0) -> Response:
    sessions: Sessions = request.app.state.sessions
    nonce, token = sessions.new_login_nonce()
    response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"session": None, "csrf": token, "next": _safe_next(next_), "message": message,
                                "username": username},
        status_code=status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    response.set_cookie(LOGIN_NONCE_COOKIE, nonce, httponly=True, samesite="lax", path="/login",
                        secure=request.app.state.settings.web.secure_cookies, max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _form(request, next_=next)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    sessions: Sessions = request.app.state.sessions
    if not sessions.login_token_ok(request.cookies.get(LOGIN_NONCE_COOKIE), csrf):
        return _form(request, next_=next, message=BAD_FORM, status=403)
    name = username.strip()[:64]
    address = request.client.host if request.client else "unknown"
    wait = sessions.throttle.wait_seconds(name, address)
    if wait:
        return _form(request, next_=next, message=TOO_MANY.format(seconds=wait), status=429, username=name,
                     retry_after=wait)
    session = sessions.sign_in(name, password)
    if session is None:
        verdicts = sessions.throttle.failed(name, address)
        _record_failure(request, name, address, verdicts)
        wait = max(v.retry_after for _, v in verdicts)
        if wait:
            return _form(request, next_=next, message=TOO_MANY.format(seconds=wait), status=429, username=name,
                         retry_after=wait)
        return _form(request, next_=next, message=BAD_SIGN_IN, status=401, username=name)
    sessions.throttle.succeeded(name)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, sessions.cookie_value(session), httponly=True, samesite="lax", path="/",
                        secure=request.app.state.settings.web.secure_cookies)
    response.delete_cookie(LOGIN_NONCE_COOKIE, path="/login")
    return response


def _record_failure(request: Request, name: str, address: str, verdicts: list[tuple[str, Verdict]]) -> None:
    """The failure, and a lockout it caused, as events in the chain (who tried, from where, how often)."""
    from ledger.chain import append_event

    failures = {key.split(":", 1)[0]: v.failures for key, v in verdicts}
    with request.app.state.ledger.transaction() as s:
        append_event(s, "sign-in-failed", payload={"username": name, "address": address, "failures": failures})
        for key, v in verdicts:
            if v.locked_out:
                kind, _, who = key.partition(":")
                append_event(s, "sign-in-locked", payload={
                    "locked": {"user": "用户名", "addr": "地址"}[kind], "who": who, "failures": v.failures,
                    "minutes": request.app.state.settings.web.signin_lockout_minutes})


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    import hmac

    sessions: Sessions = request.app.state.sessions
    session = sessions.current(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NotSignedIn(download=False)
    if not hmac.compare_digest(csrf, session.csrf):
        return Response(BAD_FORM, status_code=403, media_type="text/plain; charset=utf-8")
    sessions.sign_out(session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
