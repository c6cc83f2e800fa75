"""Documents fetched through http.client (connectors/sources/http_direct.py), over real HTTP on
127.0.0.1: kept-alive connections, a connection the server dropped, Basic auth from the URL, and a
proxy from the environment, which only httpx honours and so gets the document."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from connectors.retry import Backoff
from connectors.sources.http import stream_document
from connectors.sources.http_direct import DirectGet
from schemas.errors import SourceUnavailable

BODY = bytes(range(256)) * 9000  # 2.3 MB: more than one block


@dataclass
class Seen:
    # (path, client port, Authorization, request line, User-Agent) of every request
    requests: list[tuple[str, int, str, str, str]] = field(default_factory=list)
    drop_after: set[int] = field(default_factory=set)  # close the connection silently after these requests


def _server(seen: Seen) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.requests.append((self.path, self.client_address[1], self.headers.get("Authorization", ""),
                                  self.requestline, self.headers.get("User-Agent", "")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
            if len(seen.requests) in seen.drop_after:
                self.close_connection = True  # no "Connection: close": the client learns it on its next GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def served() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    server = _server(seen)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, direct: DirectGet | None, client: httpx.Client, *, backoff_s: float = 0.01) -> bytes:
    return b"".join(stream_document(client, url, where="test", backoff=Backoff(3, backoff_s, backoff_s),
                                    timeout=5.0, direct=direct))


def test_documents_share_one_kept_alive_connection(served: tuple[str, Seen]) -> None:
    url, seen = served
    direct = DirectGet(5.0)
    with httpx.Client() as client:
        for i in range(4):
            assert _get(f"{url}/files/{i}", direct, client) == BODY
    direct.close()
    assert [r[0] for r in seen.requests] == [f"/files/{i}" for i in range(4)]
    assert len({r[1] for r in seen.requests}) == 1  # one TCP connection for the four
    assert {r[4] for r in seen.requests} == {"guidang"}  # http.client's requests, not httpx's


def test_a_connection_the_server_dropped_is_replaced_at_once(served: tuple[str, Seen]) -> None:
    url, seen = served
    seen.drop_after = {1}
    direct = DirectGet(5.0)
    with httpx.Client() as client:
        assert _get(f"{url}/files/a", direct, client) == BODY
        time.sleep(0.1)  # the server has closed its end by now
        started = time.monotonic()
        assert _get(f"{url}/files/b", direct, client, backoff_s=30.0) == BODY  # no backoff waited
        assert time.monotonic() - started < 5
    direct.close()
    assert [r[0] for r in seen.requests] == ["/files/a", "/files/b"]
    assert seen.requests[0][1] != seen.requests[1][1] and seen.requests[1][4] == "guidang"


def test_basic_auth_from_the_url_is_sent_and_never_shown(served: tuple[str, Seen]) -> None:
    url, seen = served
    with_user = url.replace("http://", "http://archiver:pa55-w0rd@")
    direct = DirectGet(5.0)
    with httpx.Client() as client:
        assert _get(f"{with_user}/files/x", direct, client) == BODY
        with pytest.raises(SourceUnavailable) as err:  # nothing listens on port 9
            _get("http://archiver:pa55-w0rd@127.0.0.1:9/files/x", direct, client)
    direct.close()
    assert seen.requests[0][2] == "Basic " + base64.b64encode(b"archiver:pa55-w0rd").decode()
    assert "pa55-w0rd" not in str(err.value) and "127.0.0.1:9/files/x" in str(err.value)


def test_a_proxy_from_the_environment_is_honoured(served: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, seen = served  # the recording server stands in for the proxy: it sees the absolute URL
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    direct = DirectGet(5.0)
    target = "http://archive-source.invalid/files/7"
    assert not direct.handles(httpx.URL(target))
    with httpx.Client() as client:  # trust_env: this client reads HTTP_PROXY as it is now
        assert _get(target, direct, client) == BODY
    direct.close()
    assert seen.requests[0][3].startswith("GET http://archive-source.invalid/files/7 ")
    assert seen.requests[0][4].startswith("python-httpx/")


def test_the_connections_of_threads_that_ended_are_closed(served: tuple[str, Seen]) -> None:
    """A night's thread pools come and go by the chunk; a connection kept for a thread that has ended
    would hold a socket at the source until the night ends, and a long night ran the source out of
    them. Once a new thread connects, the ended threads' connections are closed."""
    url, _seen = served
    direct = DirectGet(5.0)
    with httpx.Client() as client:
        for i in range(20):
            t = threading.Thread(target=_get, args=(f"{url}/files/{i}", direct, client))
            t.start()
            t.join()
        assert len(direct._all) == 1  # the last thread's; the nineteen before it were closed
    direct.close()
