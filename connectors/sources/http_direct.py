"""The unified system's documents fetched with the standard library's http.client, in 1 MiB blocks.

Why not httpx, which every other request of a connector uses: a document is one GET of many bytes,
and httpx adds CPU per document on top of them (its request machinery, then h11 handing the body
over in small events, each copied twice), where http.client reads the socket straight into the
block it returns. On a night of small documents that overhead is a noticeable share of a worker's
time (docs/benchmark.md has the figures).

The rules stay `connectors.sources.http.stream_document`'s (it drives both paths): the same statuses,
the same resume after a transient fault, the same messages, the same whole-call deadline (the
connections read under `connectors.sources.http_deadline`'s clock). What this path would do differently
from httpx is left to httpx: a URL a proxy from the environment applies to (HTTP_PROXY, NO_PROXY…,
as httpx reads them), any scheme but http and https. HTTPS uses httpx's own certificate settings
(`httpx.create_ssl_context`: certifi, or SSL_CERT_FILE / SSL_CERT_DIR), so both paths trust the same
authorities. Redirects are not followed, as the unified connector's httpx client does not follow them.
"""

from __future__ import annotations

import functools
import http.client
import ssl
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from connectors.sources.http_deadline import ClockedConnect, ClockedResponse
from schemas.digest import BLOCK_SIZE
from schemas.errors import SourceUnavailable

# The faults of one exchange that a retry may cure (the caller resumes after what was delivered).
TRANSPORT_FAULTS = (OSError, http.client.HTTPException)
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
USER_AGENT = "guidang"


@dataclass
class Answer:
    """One response as `stream_document` needs it, whichever client fetched it."""

    status: int
    content_length: str | None
    blocks: Iterator[bytes]
    error_text: str = ""  # the start of a non-2xx answer's body, for the message


@functools.cache
def trust_context() -> ssl.SSLContext:
    """The certificates every HTTPS client of a process trusts (`httpx.create_ssl_context`: certifi,
    or SSL_CERT_FILE / SSL_CERT_DIR), made once: loading them takes a tenth of a second, which every
    connector of every worker paid again. The night's worker server makes it before it forks."""
    return httpx.create_ssl_context()


def uses_proxy(url: httpx.URL) -> bool:
    """Whether the environment names a proxy for this URL (then httpx, which honours it, fetches it)."""
    proxies = urllib.request.getproxies()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.host)


class _Connection(ClockedConnect, http.client.HTTPConnection):
    response_class = ClockedResponse


class _SecureConnection(ClockedConnect, http.client.HTTPSConnection):
    response_class = ClockedResponse


class DirectGet:
    """Kept-alive connections for document GETs, shared by every thread of the process. A connection
    serves one exchange at a time (an http.client connection is not thread-safe): it is taken from
    the idle ones for a GET and given back once its answer was read to its end. They are not tied to
    a thread: a document is read on a helper thread lent for that one read
    (`connectors.sources.reads.timed`), so a connection kept per thread would serve one GET. The idle
    ones are as many as GETs ran at once, so a long night holds no more of the source's connections
    than its busiest moment did."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int | None], list[http.client.HTTPConnection]] = {}
        self._open: set[http.client.HTTPConnection] = set()  # idle or serving a GET: what close() closes
        self._handled: dict[tuple[str, str, int | None], bool] = {}

    def handles(self, url: httpx.URL) -> bool:
        """Decided once per origin: reading the proxy settings walks the whole environment, a cost
        comparable with a small document's GET if paid for every document."""
        origin = _origin(url)
        handled = self._handled.get(origin)
        if handled is None:
            handled = self._handled[origin] = url.scheme in ("http", "https") and not uses_proxy(url)
        return handled

    @contextmanager
    def get(self, url: httpx.URL, headers: Mapping[str, str]) -> Iterator[Answer]:
        """GET `url` with `headers` (a Range, an Authorization among them); the answer's blocks are
        read as they are consumed. A connection whose answer was not read to its end is closed."""
        conn, resp = self._exchange(url, {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers})
        finished = False
        try:
            status = resp.status
            encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
            if 200 <= status < 300 and encoding != "identity":
                raise SourceUnavailable(f"answered Content-Encoding {encoding} to Accept-Encoding: identity")
            error_text = "" if 200 <= status < 300 else resp.read(200).decode("utf-8", errors="replace")
            answer = Answer(status, resp.getheader("Content-Length"), _blocks(resp), error_text)
            yield answer
            finished = resp.isclosed()  # read to its end: the connection can serve the next GET
        finally:
            if finished and conn.sock is not None:  # sock None: the server said it closes
                self._give_back(url, conn)
            else:
                self._discard(conn)

    def _exchange(self, url: httpx.URL, headers: dict[str, str]
                  ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the GET and read the answer's head. A connection that fails is closed and never
        reused; when one the server had closed while it was kept alive fails, the other idle ones
        (as old) are closed too and the GET is sent once more, at once, on a new connection."""
        target = url.raw_path.decode("ascii")
        for first in (True, False):
            conn, reused = self._take(url, fresh=not first)
            try:
                conn.request("GET", target, headers=headers)
                return conn, conn.getresponse()
            except BaseException as exc:
                self._discard(conn)
                if not (first and reused and isinstance(exc, _STALE)):
                    raise
        raise AssertionError("unreachable: the second try returns or raises")

    def _take(self, url: httpx.URL, *, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to the URL's origin (True: reused), or a new one; `fresh`: always new,
        the idle ones closed."""
        origin = _origin(url)
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if fresh:
                stale, idle[:] = list(idle), []
                self._open.difference_update(stale)
            elif idle:
                return idle.pop(), True
        if fresh:
            for conn in stale:
                conn.close()
        if url.scheme == "https":
            conn = _SecureConnection(url.host, url.port, timeout=self._timeout, context=trust_context())
        else:
            conn = _Connection(url.host, url.port, timeout=self._timeout)
        with self._lock:
            self._open.add(conn)
        return conn, False

    def _give_back(self, url: httpx.URL, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if conn in self._open:  # not closed by close() meanwhile
                self._idle.setdefault(_origin(url), []).append(conn)
                return
        conn.close()

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._lock:
            self._open.discard(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._open, self._idle = self._open, set(), {}
        for conn in conns:
            conn.close()


def _blocks(resp: http.client.HTTPResponse) -> Iterator[bytes]:
    while block := resp.read(BLOCK_SIZE):
        yield block


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)

