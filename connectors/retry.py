"""The one retry loop of the connectors: a few attempts, exponential backoff with a cap, a log line
per failed attempt, and the final error built by the caller.

Sources (HTTP, SQL) and the S3 repository all meet faults that pass if one waits: a reset
connection, a 503, a locked SQLite file, an object not yet visible after its write. Each of them
decides for itself *what* is transient (only it knows its driver's errors) and *what* the final
error says (its own error type and the context its readers need); how often to try, how long to
wait and what to log are decided here, once. Nothing here names a URL's credentials or a header:
the callers pass the text to log, and they never put a secret in it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from schemas.errors import InvariantBroken

log = logging.getLogger(__name__)

T = TypeVar("T")


class Transient(Exception):
    """An attempt failed in a way worth repeating; `reason` is what the log line and the final error
    say about it (a status, "body ended after N of M bytes"), never a secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Backoff:
    """How patiently to try: `attempts` in all (at least one), waiting `base_seconds * 2**(n - 1)`,
    at most `cap_seconds`, before the n-th repetition."""

    attempts: int
    base_seconds: float
    cap_seconds: float = math.inf

    def delay(self, retry: int) -> float:
        """The wait before repetition `retry` (1 for the second attempt)."""
        return min(self.cap_seconds, self.base_seconds * 2 ** (retry - 1))

    def __iter__(self) -> Iterator[int]:
        """The attempt numbers 1 … attempts, sleeping the backoff before each one after the first.

        For loops that cannot be a single call (a download that yields as it goes and resumes
        where it broke off): `for n in backoff: try: …; return; except …: failed(…)`.
        """
        for n in range(1, max(1, self.attempts) + 1):
            if n > 1:
                time.sleep(self.delay(n - 1))
            yield n


def failed(what: str, reason: str, attempt: int, backoff: Backoff) -> None:
    """The log line of one failed attempt; `what` names the operation ("source x: GET <url>")."""
    log.warning("%s failed (%s), attempt %d of %d", what, reason, attempt, backoff.attempts)


def with_retries(
    attempt: Callable[[], T],
    backoff: Backoff,
    *,
    what: str,
    transient: Callable[[Exception], str | None],
    give_up: Callable[[str, Exception], Exception],
) -> T:
    """`attempt()` until it returns, at most `backoff.attempts` times.

    `transient(exc)` gives the reason to log when `exc` is worth another attempt, None when it is
    not (it then propagates at once, unchanged). When the attempts are spent, `give_up(reason,
    exc)` of the last failure builds the error raised, chained to that failure (or returns the
    failure itself, which is then raised as it is).
    """
    last: tuple[str, Exception] | None = None
    for n in backoff:
        try:
            return attempt()
        except Exception as exc:
            reason = transient(exc)
            if reason is None:
                raise
            last = (reason, exc)
            failed(what, reason, n, backoff)
    if last is None:  # the loop runs at least once
        raise InvariantBroken(f"{what}: no attempt was made")
    error = give_up(*last)
    if error is last[1]:
        raise error
    raise error from last[1]


def transient_only(exc: Exception) -> str | None:
    """The `transient` of callers whose attempt raises `Transient` for everything worth repeating."""
    return exc.reason if isinstance(exc, Transient) else None


MIB = 1024 * 1024


@dataclass(frozen=True)
class Deadline:
    """One call's whole time, whatever the peer does between bytes: `base_seconds` for the
    connection, the headers and the first MiB, `seconds_per_mb` more for each MiB received. A
    socket timeout alone is per read, so a peer sending a byte every few seconds never trips it;
    the clock of an attempt bounds every read (connectors/sources/http_deadline.py) and is checked
    as the body arrives, so the call fails as Transient and the retry policy decides."""

    base_seconds: float
    seconds_per_mb: float

    def start(self) -> CallClock:
        """The clock of one attempt, started now."""
        return CallClock(self)

    def allowed(self, received: int) -> float:
        """The seconds a call may take once it has received `received` bytes."""
        return self.base_seconds + self.seconds_per_mb * max(0, received - MIB) / MIB


class CallClock:
    """One attempt's deadline as it runs. Called with the bytes received so far, it raises Transient
    once the call has taken longer than those bytes allow; `left()` is how long the next read may
    wait, so that a read blocked in the socket ends at the deadline, not a socket timeout later."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.started = time.monotonic()
        self.received = 0

    def allowed(self) -> float:
        """The seconds the call may take, for what it has received so far."""
        return self.deadline.allowed(self.received)

    def left(self) -> float:
        return self.started + self.allowed() - time.monotonic()

    def passed(self) -> str:
        """The reason a call past its deadline gives."""
        taken = time.monotonic() - self.started
        return (f"the call passed its deadline: {taken:.0f} s for {self.received} bytes "
                f"(allowed {self.allowed():.0f} s)")

    def __call__(self, received: int) -> None:
        self.received = received
        if self.left() < 0:
            raise Transient(self.passed())
