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
from connectors.sources.reads import timed
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


def test_documents_read_on_threads_of_their_own_share_one_connection(served: tuple[str, Seen]) -> None:
    """Every document is read on a helper thread that ends with it (`timed`, as the connectors read
    them): the connection goes back to the pool, not with the thread, so twenty documents one after
    the other cost one TCP connection, not twenty."""
    url, seen = served
    direct = DirectGet(5.0)
    with httpx.Client() as client:
        for i in range(20):
            chunks = stream_document(client, f"{url}/files/{i}", where="test", backoff=Backoff(3, 0.01, 0.01),
                                     timeout=5.0, direct=direct)
            assert b"".join(timed(chunks, 5.0, f"document {i}")) == BODY
    direct.close()
    assert len(seen.requests) == 20
    assert len({r[1] for r in seen.requests}) == 1


def test_gets_at_once_use_connections_of_their_own_and_keep_no_more(served: tuple[str, Seen]) -> None:
    """Four GETs at once need four connections (one http.client connection serves one exchange);
    afterwards no more than those four are kept, however many documents follow, so a long night
    never holds more of the source's connections than its busiest moment."""
    url, seen = served
    direct = DirectGet(5.0)
    barrier = threading.Barrier(4)

    def read_one(i: int) -> None:
        chunks = iter(stream_document(client, f"{url}/files/{i}", where="test", backoff=Backoff(3, 0.01, 0.01),
                                      timeout=5.0, direct=direct))
        first = next(chunks)  # the GET is sent and its answer begun: its connection is taken
        barrier.wait(timeout=5)
        assert first + b"".join(chunks) == BODY

    with httpx.Client() as client:
        for wave in range(3):
            threads = [threading.Thread(target=read_one, args=(wave * 4 + i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    direct.close()
    ports = [r[1] for r in seen.requests]
    assert len(ports) == 12 and len(set(ports[:4])) == 4
    assert set(ports) == set(ports[:4])  # the later waves reused the first wave's four
