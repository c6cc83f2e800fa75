"""S3 for tests: moto in server mode over real HTTP, fresh buckets, and a fault-injecting proxy.

A pytest plugin (registered from tests/conftest.py with `pytest_plugins = ["tests.s3_support"]`).
Fixtures:
- `moto_endpoint` (session): "http://127.0.0.1:<port>" of moto's server in its own process
  (tests/moto_serve.py); while the session runs, fake credentials are in the environment
  (restored afterwards), both as AWS_* and under the names `s3_config` puts into an S3Repository.
- `s3_admin` (session): a plain boto3 client talking straight to moto, for assertions.
- `s3_bucket` / `s3_lock_bucket` (function): a fresh bucket name, without / with Object Lock.
- `s3_fault_proxy` (function): a `FaultProxy` in front of moto, its plan empty at start and end.
"""

from __future__ import annotations

import http.client
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from schemas.config import S3Repository

ACCESS_KEY_ID_ENV = "GUIDANG_TEST_S3_ACCESS_KEY_ID"
SECRET_ACCESS_KEY_ENV = "GUIDANG_TEST_S3_SECRET_ACCESS_KEY"
FAKE_ACCESS_KEY_ID = "testing-key-id"
FAKE_SECRET = "testing-secret"
REGION = "us-east-1"

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
               "upgrade", "expect", "content-length", "host"}
TRICKLE_SECONDS = 0.2
_NO_COPY_BACK = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def s3_config(endpoint: str, bucket: str, **overrides: Any) -> S3Repository:
    """An S3Repository config for a test bucket; credentials come from the env names moto_endpoint sets."""
    values: dict[str, Any] = {
        "kind": "s3", "bucket": bucket, "endpoint_url": endpoint, "region": REGION,
        "access_key_id_env": ACCESS_KEY_ID_ENV, "secret_access_key_env": SECRET_ACCESS_KEY_ENV,
    }
    values.update(overrides)
    return S3Repository.model_validate(values)


class FaultProxy:
    """An HTTP proxy in front of an S3 endpoint that misbehaves according to a deterministic plan.

    `plan(method, actions)` queues actions for the next requests of that method, one each, then
    requests pass through again; `always(method, action)` applies an action to every such request
    until `reset()`. Actions:
    - "ok": forward unchanged;
    - "500", "503", "503:SlowDown", "403:AccessDenied", "403:RequestTimeTooSkewed" (any
      "<status>[:<S3 error code>]"): answer that error without forwarding;
    - "drop": read the request, forward nothing, close the connection without an answer;
    - "reset": the same, but abort with a TCP reset;
    - "drop-after": forward (so the store acts on it), then close without the answer;
    - "trickle": forward, then send an object GET's answer whole but its body one byte every
      TRICKLE_SECONDS (any other request passes unchanged).
    - "trickle-head": forward, then send the answer's status line and headers one byte every
      TRICKLE_SECONDS, its body at once (any request);
    With `corrupt_get_bodies` set, the body of every object GET has one byte flipped.
    `log` records (method, path, action) for each request.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self._lock = threading.Lock()
        self._plans: dict[str, deque[str]] = {}
        self._always: dict[str, str] = {}
        self.corrupt_get_bodies = False
        self.log: list[tuple[str, str, str]] = []
        handler = type("_BoundHandler", (_ProxyHandler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def plan(self, method: str, actions: Iterable[str]) -> None:
        with self._lock:
            self._plans.setdefault(method.upper(), deque()).extend(actions)

    def always(self, method: str, action: str) -> None:
        with self._lock:
            self._always[method.upper()] = action

    def reset(self) -> None:
        with self._lock:
            self._plans.clear()
            self._always.clear()
            self.corrupt_get_bodies = False
            self.log.clear()

    def actions(self, method: str | None = None) -> list[str]:
        """The actions taken so far (for one method), to prove a fault really happened."""
        with self._lock:
            return [a for m, _p, a in self.log if method is None or m == method.upper()]

    def next_action(self, method: str, path: str) -> str:
        with self._lock:
            queue = self._plans.get(method)
            action = queue.popleft() if queue else self._always.get(method, "ok")
            self.log.append((method, path, action))
            return action


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures anyway
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._read_body()
        action = self.proxy.next_action(self.command, self.path)
        if action in ("drop", "reset"):
            self._hang_up(reset=action == "reset")
            return
        if action[:1].isdigit():
            status, _, code = action.partition(":")
            self._answer_error(int(status), code or {500: "InternalError", 503: "ServiceUnavailable"}.get(
                int(status), "InjectedFault"))
            return
        status, headers, data = self._forward(body)
        if action == "drop-after":
            self._hang_up(reset=False)
            return
        if (self.command == "GET" and self.proxy.corrupt_get_bodies and status == 200 and data
                and self._is_object_get()):
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
        if action == "trickle-head":
            self._trickle_head(status, headers, data)
            return
        self.send_response(status)
        length = None
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                length = value
            if lower not in _NO_COPY_BACK:
                self.send_header(name, value)
        # HEAD answers carry the object's length and no body; everything else: what we send.
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
        self.end_headers()
        if action == "trickle" and self.command == "GET" and self._is_object_get():
            self._trickle(data)
        elif self.command != "HEAD":
            self.wfile.write(data)

    def _trickle(self, data: bytes) -> None:
        self.close_connection = True
        try:
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(TRICKLE_SECONDS)
        except OSError:  # the reader gave up: what a trickle test wants
            pass

    def _trickle_head(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.close_connection = True
        lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}"]
        lines += [f"{n}: {v}" for n, v in headers if n.lower() not in _NO_COPY_BACK and n.lower() != "content-length"]
        lines.append(f"Content-Length: {0 if self.command == 'HEAD' else len(data)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            for i in range(len(head)):
                self.wfile.write(head[i:i + 1])
                self.wfile.flush()
                time.sleep(TRICKLE_SECONDS)
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # the reader gave up: what a trickle test wants
            pass

    def _is_object_get(self) -> bool:
        parts = urlsplit(self.path)
        return not parts.query and len([p for p in parts.path.split("/") if p]) >= 2

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.proxy.upstream_host, self.proxy.upstream_port, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            # The request was signed for our Host; moto does not check signatures, so pass it on as is.
            conn.putheader("Host", self.headers.get("Host", f"{self.proxy.upstream_host}"))
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    conn.putheader(name, value)
            if body or self.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def _answer_error(self, status: int, code: str) -> None:
        data = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>injected by the test fault proxy</Message><RequestId>fault-proxy</RequestId>"
                f"</Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _hang_up(self, *, reset: bool) -> None:
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            ACCESS_KEY_ID_ENV: FAKE_ACCESS_KEY_ID, SECRET_ACCESS_KEY_ENV: FAKE_SECRET,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            mp.delenv(name, raising=False)
        server = subprocess.Popen([sys.executable, "-m", "tests.moto_serve"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
        try:
            line = server.stdout.readline() if server.stdout else ""
            if not line.startswith("port "):
                raise RuntimeError(f"the moto server did not start: {line!r}, exit {server.poll()}")
            yield f"http://127.0.0.1:{int(line.split()[1])}"
        finally:
            if server.stdin:
                server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="session")
def s3_admin(moto_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION,
                        aws_access_key_id=FAKE_ACCESS_KEY_ID, aws_secret_access_key=FAKE_SECRET,
                        config=Config(retries={"mode": "standard", "max_attempts": 2},
                                      s3={"addressing_style": "path"}))


def _new_bucket(admin: Any, *, lock: bool) -> str:
    name = f"guidang-{'lock-' if lock else ''}{uuid.uuid4().hex[:16]}"
    if lock:
        admin.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    else:
        admin.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(s3_admin: Any) -> str:
    return _new_bucket(s3_admin, lock=False)


@pytest.fixture
def s3_lock_bucket(s3_admin: Any) -> str:
    return _new_bucket(s3_admin, lock=True)


@pytest.fixture(scope="session")
def _s3_fault_proxy_server(moto_endpoint: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_endpoint).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def s3_fault_proxy(_s3_fault_proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    _s3_fault_proxy_server.reset()
    yield _s3_fault_proxy_server
    _s3_fault_proxy_server.reset()
