"""Sign-in, sessions, CSRF and the page -> roles matrix of the console.

Sessions live on the server (a table in memory of the one console process): the cookie carries only
a random session id signed with the key from `web.secret_key_env`, so a forged or altered cookie is
refused, sign-out ends the session for good, and expiry is the server's clock against the session's
last request, not whatever the browser keeps. Restarting the console signs everyone out.

A session ends after `session_minutes` without a request and, however busy, `session_max_hours`
after sign-in.

CSRF: the sign-in form carries an HMAC of a random, timestamped nonce that is also set as a cookie (a
form posted from another site has neither); each nonce is good for one post within the hour, so a
captured form cannot be replayed. The sign-out form carries the session's own token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from custody.web.throttle import Throttle
from schemas.web_config import WebConfig

SESSION_COOKIE = "guidang_session"
LOGIN_NONCE_COOKIE = "guidang_login"
LOGIN_FORM_SECONDS = 3600  # a sign-in form is good for an hour, and for one post
MIN_KEY_LENGTH = 32

ALL = frozenset({"auditor", "archivist", "approver", "operations"})
BUREAU = frozenset({"auditor", "archivist", "approver"})

# Who may open what, written once: every route names its page here and `require` checks it.
PAGE_ROLES: dict[str, frozenset[str]] = {
    "overview": ALL,  # 概览: every role follows the nights
    "rollout": ALL,  # 推进
    "quarantine": ALL,  # 隔离: operations retries, archivists judge, the bureau watches
    "search": BUREAU,  # 检索 and the 档案 package page
    "reconcile": BUREAU,  # 对账
    "audit": BUREAU,  # 审计: chain status and fixity
    "downloads": BUREAU,  # 下载: registers and catalogues
    "use": frozenset({"archivist"}),  # 利用: a document's stamped access copy (its content is unmasked)
    "original": frozenset({"archivist"}),  # a document's original, byte for byte
    "retry": frozenset({"operations"}),  # 隔离 重试: what `guidang quarantine retry` does
    "holds": BUREAU,  # 冻结: the holds, in force and released
    "hold": frozenset({"archivist"}),  # place or release a hold
    "appraisals": BUREAU,  # 鉴定: the appraisals, their records and decisions, the 销毁清单
    "appraise": frozenset({"archivist"}),  # open an appraisal, record decisions (鉴定小组)
    "approve": frozenset({"approver"}),  # approve an appraisal decided by others (分管领导)
    "copies": ALL,  # 副本: each copy of the archive, its catch-ups and repairs
}


class Clock:
    """Now, in UTC; a test advances it to see a session expire without waiting."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Session:
    sid: str
    username: str
    role: str
    csrf: str
    expires_at: datetime  # idle expiry, moved on by each request
    ends_at: datetime  # absolute: sign-in + session_max_hours


class PasswordCheck:
    """argon2 verification that takes as long for an unknown user as for a wrong password: the dummy
    hash an unknown name is checked against is made with the SAME parameters (time, memory,
    parallelism) as the configured users' hashes, since verification costs what the stored hash says."""

    def __init__(self, stored_hashes: list[str] | None = None) -> None:
        from argon2 import PasswordHasher, extract_parameters
        from argon2.exceptions import InvalidHashError

        self._hasher = PasswordHasher()
        params = []
        for h in stored_hashes or []:
            try:
                params.append(extract_parameters(h))
            except InvalidHashError:
                continue
        # the most common parameters among the users: what a known name costs
        dummy_hasher = max(params, key=params.count, default=None)
        hasher = PasswordHasher.from_parameters(dummy_hasher) if dummy_hasher else self._hasher
        self._dummy = hasher.hash(secrets.token_hex(16))

    @property
    def dummy(self) -> str:
        return self._dummy

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            # an unknown user is checked against a dummy hash: the same work, the same answer (False)
            ok = self._hasher.verify(stored_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(ok) and stored_hash is not None


class Sessions:
    """The console's open sessions and the signing of their cookies."""

    def __init__(self, config: WebConfig, key: bytes, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._key = key
        self._now = clock
        self._lock = threading.Lock()
        self._open: dict[str, Session] = {}
        self._used_nonces: dict[str, datetime] = {}
        self.passwords = PasswordCheck([u.password_hash for u in config.users])
        self.throttle = Throttle(config, clock)

    # ---- cookies

    def _sign(self, value: str) -> str:
        return hmac.new(self._key, value.encode("ascii"), hashlib.sha256).hexdigest()

    def cookie_value(self, session: Session) -> str:
        return f"{session.sid}.{self._sign(session.sid)}"

    def _sid_of(self, cookie: str | None) -> str | None:
        if not cookie or "." not in cookie:
            return None
        sid, _, mac = cookie.rpartition(".")
        return sid if hmac.compare_digest(mac, self._sign(sid)) else None

    # ---- sign-in CSRF

    def new_login_nonce(self) -> tuple[str, str]:
        """(nonce for the cookie, token for the form)."""
        nonce = f"{int(self._now().timestamp())}.{secrets.token_urlsafe(24)}"
        return nonce, self._sign("login:" + nonce)

    def login_token_ok(self, nonce: str | None, token: str | None) -> bool:
        """True once for a fresh form's (nonce, token): a second post of the same form is refused."""
        if not nonce or not token or not hmac.compare_digest(token, self._sign("login:" + nonce)):
            return False
        issued, _, _ = nonce.partition(".")
        now = self._now()
        if not issued.isdigit() or not 0 <= now.timestamp() - int(issued) <= LOGIN_FORM_SECONDS:
            return False
        with self._lock:
            for old in [n for n, t in self._used_nonces.items() if (now - t).total_seconds() > LOGIN_FORM_SECONDS]:
                del self._used_nonces[old]
            if nonce in self._used_nonces:
                return False
            self._used_nonces[nonce] = now
        return True

    # ---- sessions

    def sign_in(self, username: str, password: str) -> Session | None:
        user = self._config.user(username)
        if not self.passwords.verify(user.password_hash if user else None, password) or user is None:
            return None
        now = self._now()
        session = Session(secrets.token_urlsafe(32), user.username, user.role, secrets.token_urlsafe(24),
                          now + timedelta(minutes=self._config.session_minutes),
                          now + timedelta(hours=self._config.session_max_hours))
        with self._lock:
            self._prune()
            self._open[session.sid] = session
        return session

    def current(self, cookie: str | None) -> Session | None:
        """The cookie's session if it is open and not expired; its expiry moves on (idle timeout)."""
        sid = self._sid_of(cookie)
        if sid is None:
            return None
        now = self._now()
        with self._lock:
            session = self._open.get(sid)
            if session is None:
                return None
            if session.expires_at <= now or session.ends_at <= now:
                del self._open[sid]
                return None
            session.expires_at = min(now + timedelta(minutes=self._config.session_minutes), session.ends_at)
            return session

    def sign_out(self, session: Session) -> None:
        with self._lock:
            self._open.pop(session.sid, None)

    def _prune(self) -> None:
        now = self._now()
        for sid in [s for s, v in self._open.items() if v.expires_at <= now or v.ends_at <= now]:
            del self._open[sid]

    def sees_personal_data(self, session: Session) -> bool:
        return session.role in self._config.unmasked_roles


def may_open(role: str, page: str) -> bool:
    return role in PAGE_ROLES[page]
