"""Deadlines: a peer that trickles (its headers, or its body a byte now and then) or a store that
accepts and never answers fails its call in bounded time, and the retry policy decides; a night past
its own deadline ends failed with its summary. Real sockets and a real HTTP server; the night over
the demo world."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from connectors.repositories import open_repository
from connectors.repositories.base import RepositoryError
from connectors.repositories.s3 import S3ObjectRepository
from connectors.retry import Backoff, Deadline
from connectors.sources.http import stream_document
from connectors.sources.http_deadline import deadline_client
from connectors.sources.sql import SqlConnector
from connectors.sources.unified import UnifiedConnector
from night.engine import run_nightly
from night.progress import SourceProgress
from schemas.config import S3Repository, SqlSource, UnifiedSource, load_settings
from schemas.errors import SourceUnavailable
from schemas.model import Document, Matter
from tests.s3_support import FaultProxy, s3_config
from tests.world_support import simulator


class _Trickle(BaseHTTPRequestHandler):
    """Answers 200 with a 1,000-byte body, sent one byte every 0.2 s (a read timeout never trips)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def trickling() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A socket that accepts every connection and never answers a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
GAP = 0.5  # between two bytes of the head: inside the clients' one-second socket timeout


@pytest.fixture
def trickling_headers() -> Iterator[str]:
    """A raw socket server that reads a request, then sends its status line and headers one byte
    every GAP seconds (the whole answer would take HEAD's length x GAP, about 40 s)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            for byte in HEAD:
                if stop.wait(GAP):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the client gave up and closed: what the test wants
                    return

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def _unified(base_url: str) -> UnifiedSource:
    return UnifiedSource(name="unified", kind="unified", base_url=base_url, timeout_seconds=1, retries=1,
                         backoff_seconds=0, call_deadline_seconds=1.5, deadline_seconds_per_mb=1)


def test_a_source_that_trickles_its_headers_fails_a_json_call_at_the_deadline(trickling_headers: str) -> None:
    connector = UnifiedConnector(_unified(trickling_headers))
    started = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable) as caught:
            list(connector.completed_between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)))
    finally:
        connector.close()
    taken = time.monotonic() - started
    assert "deadline" in str(caught.value) and "after 2 attempts" in str(caught.value)
    assert taken < 2 * 1.5 + 1.5, taken  # two attempts at the deadline, not 40 s of headers each


def test_a_source_that_trickles_its_headers_fails_a_download_at_the_deadline(trickling_headers: str) -> None:
    connector = UnifiedConnector(_unified(trickling_headers))  # documents through http.client
    document = Document(group="申报", title="申请表", file_name="a.pdf", media_type="application/pdf", size=2,
                        locator="F1")
    started = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable) as caught:
            list(connector.open_document(document))
    finally:
        connector.close()
    taken = time.monotonic() - started
    assert "deadline" in str(caught.value) and "after 2 attempts" in str(caught.value)
    assert taken < 2 * 1.5 + 1.5, taken


def test_a_download_through_httpx_from_a_peer_that_trickles_its_headers_ends_at_the_deadline(
    trickling_headers: str,
) -> None:
    with deadline_client(timeout=1) as client:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as caught:
            list(stream_document(client, f"{trickling_headers}/files/F1", where="source x: document F1",
                                 backoff=Backoff(2, 0), timeout=1, deadline=Deadline(1.5, 1)))
        taken = time.monotonic() - started
    assert "ReadTimeout: the call passed its deadline" in str(caught.value)
    assert taken < 2 * 1.5 + 1.5, taken


def test_a_download_whose_connection_closes_after_it_is_read_whole_under_the_clock() -> None:
    """`Connection: close`: http.client closes the connection once the head is in and the body is
    read from the socket the response keeps, after a pause, through the clocked reader."""
    body = bytes(range(256)) * 4096  # 1 MiB
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def answer() -> None:
        conn = listener.accept()[0]
        with conn:
            while b"\r\n\r\n" not in conn.recv(4096):
                pass
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
            time.sleep(0.3)
            conn.sendall(body)

    threading.Thread(target=answer, daemon=True).start()
    connector = UnifiedConnector(_unified(f"http://127.0.0.1:{listener.getsockname()[1]}"))
    document = Document(group="申报", title="申请表", file_name="a.pdf", media_type="application/pdf",
                        size=len(body), locator="F1")
    try:
        assert b"".join(connector.open_document(document)) == body
    finally:
        connector.close()
        listener.close()


def test_a_trickling_source_fails_its_call_at_the_deadline_and_the_retries_decide(trickling: str) -> None:
    config = UnifiedSource(name="unified", kind="unified", base_url=trickling, timeout_seconds=5, retries=1,
                           backoff_seconds=0, call_deadline_seconds=1, deadline_seconds_per_mb=1)
    connector = UnifiedConnector(config)
    started = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable) as caught:
            list(connector.completed_between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)))
    finally:
        connector.close()
    taken = time.monotonic() - started
    assert "deadline" in str(caught.value) and "after 2 attempts" in str(caught.value)
    assert taken < 8, taken  # two attempts of about a second each, not 1,000 bytes x 0.2 s


def _sql_url_source(tmp_path: Path, url: str) -> SqlConnector:
    """A self-built system (自建系统) whose one document is fetched by URL, under a 1 s call deadline."""
    db = tmp_path / "d.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript("CREATE TABLE m (pid TEXT, done TEXT); CREATE TABLE d (fid INTEGER, pid TEXT, loc TEXT);")
        con.execute("INSERT INTO m VALUES ('P1', '2025-03-01 10:00:00')")
        con.execute("INSERT INTO d VALUES (1, 'P1', ?)", (url,))
    con.close()
    config = SqlSource.model_validate({
        "name": "dept", "kind": "sql", "url": f"sqlite:///{db}",
        "matters_query": "SELECT pid, done, done AS upd FROM m WHERE done > :since AND done <= :until",
        "columns": {"project_id": "pid", "agency": "pid", "applicant_name": "pid", "completed_at": "done",
                    "updated_at": "upd"},
        "constants": {"service_code": "S1", "service_name": "审批", "matter_type": "01"},
        "documents_query": "SELECT fid, 'a.pdf' AS fname, loc, '结果' AS grp FROM d WHERE pid = :project_id",
        "document_columns": {"key": "fid", "group": "grp", "file_name": "fname"},
        "content": {"kind": "url", "column": "loc"},
        "call_deadline_seconds": 1, "deadline_seconds_per_mb": 1,
    })
    return SqlConnector(config, base_dir=tmp_path, retries=1, backoff_seconds=0, http_timeout_seconds=1)


@pytest.mark.parametrize("peer", ["trickling", "trickling_headers"])
def test_a_self_built_systems_document_by_url_fails_at_the_call_deadline(peer: str, tmp_path: Path,
                                                                         request: pytest.FixtureRequest) -> None:
    """A peer that trickles the body (a byte every 0.2 s) or the head (a byte every 0.5 s), each
    inside the one-second read timeout, fails the document's GET at the call deadline."""
    connector = _sql_url_source(tmp_path, f"{request.getfixturevalue(peer)}/doc.pdf")
    try:
        matter = connector.fetch_matter("P1")
        assert isinstance(matter, Matter)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as caught:
            b"".join(connector.open_document(matter.documents[0]))
        taken = time.monotonic() - started
    finally:
        connector.close()
    assert "passed its deadline" in str(caught.value) and "after 2 attempts" in str(caught.value)
    assert "source dept: project P1" in str(caught.value)
    assert taken < 2 * 1 + 2, taken  # two attempts of about a second, not 200 s of body or 40 s of head


@pytest.mark.parametrize("peer", ["trickling", "silent"])
def test_a_unified_document_from_a_peer_that_trickles_its_body_or_never_speaks_fails_in_bounded_time(
    peer: str, request: pytest.FixtureRequest,
) -> None:
    """The document path (http.client): a body a byte every 0.2 s (1,000 bytes: 200 s) ends at the
    call deadline; a peer that accepts and never sends a byte ends at the read timeout."""
    connector = UnifiedConnector(_unified(request.getfixturevalue(peer)))
    document = Document(group="申报", title="申请表", file_name="a.pdf", media_type="application/pdf",
                        size=1000, locator="F1")
    started = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable) as caught:
            b"".join(connector.open_document(document))
    finally:
        connector.close()
    taken = time.monotonic() - started
    assert "after 2 attempts" in str(caught.value) and "F1" in str(caught.value)
    assert ("passed its deadline" if peer == "trickling" else "timed out") in str(caught.value)
    assert taken < 2 * 1.5 + 1.5, taken


def test_a_store_that_never_answers_fails_a_call_in_bounded_time(silent: str, tmp_path: Path) -> None:
    repo_config = S3Repository(kind="s3", bucket="archive", endpoint_url=silent, region="us-east-1",
                               connect_timeout_seconds=1, read_timeout_seconds=1, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(RepositoryError):
        repo = open_repository(repo_config, base_dir=tmp_path)
        repo.put_bytes("checkpoints/x.json", b"{}")
    assert time.monotonic() - started < 15  # 2 attempts of a second, botocore's backoff between them


def test_a_store_that_trickles_a_body_fails_the_read_within_its_deadline(s3_bucket: str,
                                                                         s3_fault_proxy: FaultProxy) -> None:
    """connect_timeout_seconds 1 and deadline_seconds_per_mb 1: a read of a small object may take 2 s;
    the store sends a byte every 0.2 s (inside the 1 s read timeout), which would take 40 s."""
    config = s3_config(s3_fault_proxy.url, s3_bucket, deadline_seconds_per_mb=1)
    repo = S3ObjectRepository(config, max_attempts=2, connect_timeout=1, read_timeout=1, verify_attempts=2)
    data = b"%PDF-1.7 a document that the store will hand back a byte at a time, padded." + b" " * 124
    stored = repo.put_bytes("Z109/a.pdf", data)
    s3_fault_proxy.always("GET", "trickle")

    started = time.monotonic()
    with pytest.raises(RepositoryError) as caught:
        b"".join(repo.open("Z109/a.pdf"))
    taken = time.monotonic() - started
    assert "REPO-TRANSIENT" in [f.code for f in caught.value.findings]
    assert "passed its deadline" in str(caught.value) and "Z109/a.pdf" in str(caught.value)
    assert 1.5 < taken < 4, taken

    started = time.monotonic()
    with pytest.raises(RepositoryError, match="passed its deadline"):
        repo.verify("Z109/a.pdf", stored.sha256)  # fixity: a full read-back, under the store's retries
    assert time.monotonic() - started < 2 * 2 + 3
    assert "trickle" in s3_fault_proxy.actions("GET")

    s3_fault_proxy.reset()  # the same read from a store that answers at once
    assert b"".join(repo.open("Z109/a.pdf")) == data


def test_a_store_that_trickles_the_head_of_its_answers_fails_each_call_within_its_deadline(
    s3_bucket: str, s3_fault_proxy: FaultProxy,
) -> None:
    """connect_timeout_seconds 1 and read_timeout_seconds 1: an attempt may take 2 s to its answer's
    head; the store sends its status line and headers a byte every 0.2 s (inside the read timeout),
    which would take about a minute per attempt."""
    config = s3_config(s3_fault_proxy.url, s3_bucket, deadline_seconds_per_mb=1)
    repo = S3ObjectRepository(config, max_attempts=2, connect_timeout=1, read_timeout=1, verify_attempts=2)
    data = b"%PDF-1.7 a document whose every answer the store will trickle, head first."
    repo.put_bytes("Z109/a.pdf", data)
    s3_fault_proxy.always("GET", "trickle-head")
    s3_fault_proxy.always("HEAD", "trickle-head")

    for call in (lambda: b"".join(repo.open("Z109/a.pdf")), lambda: repo.head("Z109/a.pdf")):
        started = time.monotonic()
        with pytest.raises(RepositoryError) as caught:
            call()
        taken = time.monotonic() - started
        assert [f.code for f in caught.value.findings] == ["REPO-TRANSIENT"]
        assert "the last cut at its deadline (2 s" in str(caught.value) and "Z109/a.pdf" in str(caught.value)
        assert taken < 2 * 2 + 3, taken  # two attempts of 2 s and botocore's backoff, not minutes
    assert s3_fault_proxy.actions("GET").count("trickle-head") == 2, s3_fault_proxy.log
    assert s3_fault_proxy.actions("HEAD").count("trickle-head") == 2, s3_fault_proxy.log

    s3_fault_proxy.reset()  # the same calls to a store that answers at once, on the same client
    assert b"".join(repo.open("Z109/a.pdf")) == data
    assert repo.head("Z109/a.pdf") is not None


def test_a_night_past_its_deadline_ends_failed_with_its_summary(small_world: Path) -> None:
    raw = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    raw["night_deadline_minutes"] = 0.02  # 1.2 s
    config = small_world / "guidang-deadline.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    slowed: list[str] = []

    def slow_first_source(p: SourceProgress) -> None:
        if not slowed:
            slowed.append(p.source)
            time.sleep(1.5)  # the first source outlasts the night's deadline

    with simulator(small_world):
        summary = run_nightly(load_settings(config), sources=["tzxm", "unified"], progress=slow_first_source)
    assert summary["status"] == "failed"
    first, second = slowed[0], ({"tzxm", "unified"} - set(slowed)).pop()
    assert "deadline" in summary["sources"][second]["error"]
    assert summary["sources"][second]["collected"] == 0
    assert summary["sources"][first].get("stored", 0) == summary["stored"]["packages"]
    assert any("deadline" in f for f in summary["failures"])
