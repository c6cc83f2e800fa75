"""Sign-in throttling (登录限速): failed sign-ins counted per user name and per client address.

From the third failure of a key on, the key waits before its next try (1, 2, 4 ... up to 60 seconds:
a password guesser slows to a crawl, a person who mistyped twice does not notice); at the configured
number of failures the key is locked out for `signin_lockout_minutes`, even for the right password.
A refused try is answered 429 with `Retry-After` and costs no password check. Failures older than the
lockout are forgotten; a successful sign-in clears its user name's failures (not its address's, so one
valid account cannot reset an address that guesses at others). Counts live in the console process,
like the sessions; the audit trail of each failure and lockout lives in the ledger's chain.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.web_config import WebConfig

FREE_FAILURES = 2  # failures a key may make before it has to wait
MAX_BACKOFF_SECONDS = 60


@dataclass
class _Key:
    failures: list[datetime] = field(default_factory=list)
    blocked_until: datetime | None = None
    locked: bool = False


@dataclass(frozen=True)
class Verdict:
    """What one failure led to: the key's failures in the window and whether it is now locked out."""

    failures: int
    locked_out: bool
    retry_after: int


class Throttle:
    def __init__(self, config: WebConfig, clock: Callable[[], datetime]) -> None:
        self._config = config
        self._now = clock
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}

    def _limit(self, key: str) -> int:
        return self._config.signin_address_max_failures if key.startswith("addr:") else self._config.signin_max_failures

    def wait_seconds(self, user: str, address: str) -> int:
        """Seconds before this user name or this address may try again (0: it may try now)."""
        now = self._now()
        with self._lock:
            waits = [self._wait(self._keys.get(k), now) for k in (f"user:{user}", f"addr:{address}")]
        return max(waits)

    @staticmethod
    def _wait(entry: _Key | None, now: datetime) -> int:
        if entry is None or entry.blocked_until is None or entry.blocked_until <= now:
            return 0
        return max(1, math.ceil((entry.blocked_until - now).total_seconds()))

    def failed(self, user: str, address: str) -> list[tuple[str, Verdict]]:
        """Count one failure against both keys; returns (key, verdict) for each."""
        now = self._now()
        window = timedelta(minutes=self._config.signin_lockout_minutes)
        out = []
        with self._lock:
            for key in (f"user:{user}", f"addr:{address}"):
                entry = self._keys.setdefault(key, _Key())
                if entry.locked and entry.blocked_until is not None and entry.blocked_until <= now:
                    entry.failures, entry.locked = [], False  # a lockout served starts the count afresh
                entry.failures = [t for t in entry.failures if now - t < window] + [now]
                n = len(entry.failures)
                newly_locked = n >= self._limit(key) and not entry.locked
                if newly_locked:
                    entry.locked, entry.blocked_until = True, now + window
                elif not entry.locked and n > FREE_FAILURES:
                    entry.blocked_until = now + timedelta(seconds=min(2 ** (n - FREE_FAILURES - 1),
                                                                      MAX_BACKOFF_SECONDS))
                out.append((key, Verdict(n, newly_locked, self._wait(entry, now))))
            self._prune(now, window)
        return out

    def succeeded(self, user: str) -> None:
        with self._lock:
            entry = self._keys.get(f"user:{user}")
            if entry is not None and not entry.locked:
                del self._keys[f"user:{user}"]

    def _prune(self, now: datetime, window: timedelta) -> None:
        if len(self._keys) < 10_000:
            return  # bounded memory against a flood of made-up names
        for key in [k for k, e in self._keys.items() if not e.failures or now - e.failures[-1] >= window]:
            del self._keys[key]
