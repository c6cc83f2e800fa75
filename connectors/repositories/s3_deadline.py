"""A whole-attempt deadline on every S3 call, the answer's head included.

botocore's read timeout is per socket read: a store that sends its status line and headers a byte
at a time, each just inside it, holds an attempt for as long as it likes, and botocore repeats that
`max_attempts` times. So each attempt is sent with an alarm armed (`guidang_io.watchdog`) that
shuts the attempt's socket down when the attempt has taken `connect_timeout_seconds` plus
`read_timeout_seconds` (plus `deadline_seconds_per_mb` for each MiB of request body beyond the
first, so that an upload may take its time to send); the read in progress ends at once, botocore
sees a closed connection and retries like any other, and the final error says the deadline was
passed. The alarm is disarmed as soon as the answer's head is in: a GET's body is read under its
own deadline (`S3Bucket.stream`).

The attempt's socket is only known to urllib3, deep inside botocore's HTTP session, so the
session's connection classes are replaced by ones that name themselves to the attempt of their
thread when they send a request (botocore offers no setting for them, as httpx offers none for
httpcore's backend: a layout that has changed raises here rather than leave the calls unbounded).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from botocore.awsrequest import (
    AWSHTTPConnection,
    AWSHTTPConnectionPool,
    AWSHTTPSConnection,
    AWSHTTPSConnectionPool,
)

from connectors.retry import MIB
from guidang_io.watchdog import Alarm, watchdog
from schemas.errors import InvariantBroken

_THREAD = threading.local()  # the attempt under way on this thread, and whether the last one was cut


class _Attempt:
    """One attempt's alarm and the connection it sends on (named by the connection itself)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.conn: Any = None
        self.alarm: Alarm = watchdog().arm(seconds, self._cut)

    def _cut(self) -> None:
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


class _Named:
    """Mixed into botocore's connections: a request names its connection to its thread's attempt."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        attempt = getattr(_THREAD, "attempt", None)
        if attempt is not None:
            attempt.conn = self
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Named, AWSHTTPConnection):
    pass


class _HTTPSConnection(_Named, AWSHTTPSConnection):
    pass


class _HTTPPool(AWSHTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(AWSHTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


def bound_attempts(client: Any, base_seconds: float, seconds_per_mb: float) -> None:
    """Every attempt of `client`'s calls ends by `base_seconds` (+ `seconds_per_mb` per MiB sent
    beyond the first), from the request sent to the answer's head received."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    pools = getattr(session, "_pool_classes_by_scheme", None)
    manager = getattr(session, "_manager", None)
    if not isinstance(pools, dict) or getattr(manager, "pool_classes_by_scheme", None) is not pools:
        raise InvariantBroken("botocore's HTTP session has no pool classes to replace: an S3 call's deadline "
                              "cannot be enforced")
    pools.update({"http": _HTTPPool, "https": _HTTPSPool})  # the dict its pool managers share

    def arm(request: Any, **_kwargs: Any) -> None:
        _end()
        sent = _body_size(request)
        if sent is None:
            return  # a body of unknown length: bounded per read only
        seconds = base_seconds + seconds_per_mb * max(0, sent - MIB) / MIB
        _THREAD.attempt = _Attempt(seconds)
        _THREAD.cut = None

    def disarm(**_kwargs: Any) -> None:
        _end()

    def begin(**_kwargs: Any) -> None:
        _end()
        _THREAD.cut = None

    client.meta.events.register_first("before-call.s3", begin)
    client.meta.events.register_first("before-send.s3", arm)
    client.meta.events.register_first("needs-retry.s3", disarm)


def _end() -> None:
    """Disarm the thread's attempt, if any, and remember whether its alarm went off."""
    attempt: _Attempt | None = getattr(_THREAD, "attempt", None)
    if attempt is None:
        return
    attempt.alarm.disarm()
    _THREAD.attempt = None
    _THREAD.cut = attempt.seconds if attempt.alarm.fired else None


def _body_size(request: Any) -> int | None:
    length = request.headers.get("Content-Length")
    if length is not None:
        return int(length)
    body = request.body
    if body is None or isinstance(body, bytes | bytearray):
        return len(body or b"")
    return None


def cut_at_deadline() -> float | None:
    """The deadline (seconds) of this thread's last S3 attempt when its alarm ended it, else None."""
    return getattr(_THREAD, "cut", None)
