"""A whole-call deadline under every socket read of an HTTP call, for httpx and for http.client.

Both clients time each socket operation, not the call: a peer that sends its status line and
headers one byte at a time, each just inside the read timeout, holds a call for as long as it
likes. So the call's clock (`connectors.retry.CallClock`) is put in force around each step of the
call (`bounded`), and every read made meanwhile waits at most what is left of it: the read that
would pass the deadline ends at the deadline with a timeout naming it, whichever part of the
answer it was reading, and the connection is closed as after any timeout. The retry policy then
decides, as for any other transient fault.

httpx reads through httpcore's network backend, which `deadline_client` replaces by one whose
streams obey the clock; http.client reads through the socket file of its response, which
`ClockedResponse` replaces. The clock travels in a context variable because httpx hands the
stream nothing but a timeout; it is set only around steps that do not yield, so a generator
consumed on another thread (`connectors.sources.reads.timed`) never carries it across.
"""

from __future__ import annotations

import http.client
import io
import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from connectors.retry import CallClock
from schemas.errors import InvariantBroken

_CLOCK: ContextVar[CallClock | None] = ContextVar("guidang_call_clock", default=None)


@contextmanager
def bounded(clock: CallClock | None) -> Iterator[None]:
    """Every HTTP read inside the block ends by the clock's deadline (no bound with None)."""
    token = _CLOCK.set(clock)
    try:
        yield
    finally:
        _CLOCK.reset(token)


def _wait(timeout: float | None, error: type[Exception]) -> tuple[float | None, CallClock | None]:
    """The timeout of the next socket operation under the clock in force, and that clock; `error`
    (with the clock's reason) when its deadline has already passed."""
    clock = _CLOCK.get()
    if clock is None:
        return timeout, None
    left = clock.left()
    if left <= 0:
        raise error(clock.passed())
    return min(math.inf if timeout is None else timeout, left), clock


class _ClockedStream(httpcore.NetworkStream):
    """httpcore's socket stream, each read and write bounded by the clock in force."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        wait, clock = _wait(timeout, httpcore.ReadTimeout)
        try:
            return self._inner.read(max_bytes, wait)
        except httpcore.ReadTimeout:
            if clock is not None and clock.left() <= 0:
                raise httpcore.ReadTimeout(clock.passed()) from None
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        wait, clock = _wait(timeout, httpcore.WriteTimeout)
        try:
            self._inner.write(buffer, wait)
        except httpcore.WriteTimeout:
            if clock is not None and clock.left() <= 0:
                raise httpcore.WriteTimeout(clock.passed()) from None
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        wait, _clock = _wait(timeout, httpcore.ConnectTimeout)
        return _ClockedStream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _ClockedBackend(httpcore.NetworkBackend):
    """The backend httpcore would use, its connections made and read under the clock in force."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        wait, _clock = _wait(timeout, httpcore.ConnectTimeout)
        return _ClockedStream(self._inner.connect_tcp(host, port, wait, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        wait, _clock = _wait(timeout, httpcore.ConnectTimeout)
        return _ClockedStream(self._inner.connect_unix_socket(path, wait, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_client(**kwargs: Any) -> httpx.Client:
    """An `httpx.Client(**kwargs)` whose connections, direct or through a proxy from the
    environment, read under the clock in force (`bounded`).

    httpx builds its transports itself and offers no setting for httpcore's network backend, so it
    is put into each transport's pool once the client is built; a layout that has changed raises
    here rather than leave the calls unbounded."""
    client = httpx.Client(**kwargs)
    transports = [client._transport, *(t for t in client._mounts.values() if t is not None)]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
            client.close()
            raise InvariantBroken(f"httpx transport {type(transport).__name__} has no httpcore pool with a "
                                  "network backend: the call deadline cannot be enforced")
        pool._network_backend = _ClockedBackend(pool._network_backend)
    return client


class _ClockedReader(io.RawIOBase):
    """A socket's bytes for http.client's response, each receive bounded by the clock in force.

    It reads through the socket's own raw file, which keeps the socket open while the answer is
    read: http.client closes a connection that will not be kept alive as soon as the head is in,
    leaving the socket to its response that way."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        before = self._sock.gettimeout()
        wait, clock = _wait(before, TimeoutError)
        if clock is None:
            return self._raw.readinto(buffer)
        self._sock.settimeout(wait)
        try:
            return self._raw.readinto(buffer)
        except TimeoutError:
            if clock.left() <= 0:
                raise TimeoutError(clock.passed()) from None
            raise
        finally:
            self._sock.settimeout(before)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class ClockedResponse(http.client.HTTPResponse):
    """http.client's response reading its status line, headers and body under the clock in force."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        plain, self.fp = self.fp, io.BufferedReader(_ClockedReader(sock))
        plain.close()  # the socket file http.client opened, before any byte was read from it


class ClockedConnect:
    """Mixed into http.client's connections: the connection (and TLS handshake) made within what is
    left of the clock in force, the configured timeout kept for what follows."""

    timeout: Any
    sock: socket.socket | None

    def connect(self) -> None:
        configured = self.timeout
        wait, _clock = _wait(configured, TimeoutError)
        self.timeout = wait
        try:
            super().connect()  # type: ignore[misc]
        finally:
            self.timeout = configured
            if self.sock is not None:
                self.sock.settimeout(configured)
