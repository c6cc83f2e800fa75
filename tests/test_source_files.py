"""Only regular files are read as documents, and no read from a source waits without end.

A self-built system's document paths may name anything the file system holds: a FIFO (whose
`open()` blocks until a writer comes), a directory, a symbolic link out of the document root. Each
must be refused as that document's fault at once, naming what it is; and a source that stops
sending in the middle of a document (an HTTP server here, the same wrapper guards files and BLOBs)
must fail that document within the source's `read_timeout_seconds`.
"""

from __future__ import annotations

import http.server
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sources.reads import timed
from connectors.sources.sql import SqlConnector
from schemas.config import SqlSource
from schemas.errors import DocumentUnavailable
from schemas.model import Matter


def world(tmp_path: Path, paths: list[str], *, kind: str = "path", **extra: Any) -> SqlConnector:
    db = tmp_path / "d.sqlite"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE m (pid TEXT, agency TEXT, done TEXT);"
                      "CREATE TABLE d (fid INTEGER, pid TEXT, fname TEXT, loc TEXT);")
    con.execute("INSERT INTO m VALUES ('P1', '一号审批局', '2025-03-01 10:00:00')")
    for n, p in enumerate(paths, 1):
        con.execute("INSERT INTO d VALUES (?, 'P1', ?, ?)", (n, f"f{n}.pdf", p))
    con.commit()
    con.close()
    config = SqlSource.model_validate({
        "name": "dept", "kind": "sql", "url": f"sqlite:///{db}",
        "matters_query": "SELECT pid, agency, done, done AS upd FROM m WHERE done > :since AND done <= :until",
        "columns": {"project_id": "pid", "agency": "agency", "applicant_name": "agency", "completed_at": "done",
                    "updated_at": "upd"},
        "constants": {"service_code": "S1", "service_name": "审批", "matter_type": "01"},
        "documents_query": "SELECT fid, fname, loc, '结果' AS grp FROM d WHERE pid = :project_id",
        "document_columns": {"key": "fid", "group": "grp", "file_name": "fname"},
        "content": {"kind": kind, "column": "loc", **({"root": str(tmp_path / "files")} if kind == "path" else {})},
        **extra,
    })
    return SqlConnector(config, base_dir=tmp_path, backoff_seconds=0.01)


def documents(conn: SqlConnector) -> list[Any]:
    matter = conn.fetch_matter("P1")
    assert isinstance(matter, Matter)
    return matter.documents


def read_within(conn: SqlConnector, doc: Any, seconds: float) -> bytes | BaseException:
    """The document's bytes or the error reading it gave, which must come within `seconds`."""
    out: list[bytes | BaseException] = []

    def run() -> None:
        try:
            out.append(b"".join(conn.open_document(doc)))
        except BaseException as exc:
            out.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, f"reading {doc.file_name} hung for more than {seconds} s"
    return out[0]


def test_only_regular_files_are_read_and_nothing_hangs(tmp_path: Path) -> None:
    files = tmp_path / "files"
    (files / "folder").mkdir(parents=True)
    (files / "ok.pdf").write_bytes(b"%PDF-1.4 fine")
    os.mkfifo(files / "pipe.pdf")
    (tmp_path / "secret.pdf").write_bytes(b"%PDF-1.4 outside")
    (files / "out.pdf").symlink_to(tmp_path / "secret.pdf")
    (files / "zero.pdf").symlink_to("/dev/zero")
    (files / "inside.pdf").symlink_to(files / "ok.pdf")
    paths = ["ok.pdf", "pipe.pdf", "folder", "out.pdf", "zero.pdf", "inside.pdf", "gone.pdf"]
    with world(tmp_path, paths) as conn:
        got = {d.file_name: read_within(conn, d, 5) for d in documents(conn)}
    assert got["f1.pdf"] == got["f6.pdf"] == b"%PDF-1.4 fine"
    expected = {"f2.pdf": "is a FIFO (named pipe), not a regular file; refused",
                "f3.pdf": "is a directory, not a regular file; refused",
                "f4.pdf": "escapes the document root", "f5.pdf": "escapes the document root",
                "f7.pdf": "file not found"}
    for name, message in expected.items():
        error = got[name]
        assert isinstance(error, DocumentUnavailable) and message in str(error), (name, error)
        assert "project P1" in str(error) and name in str(error)


def test_a_character_device_inside_the_root_is_refused(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    try:
        os.mknod(files / "tty.pdf", 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
    except PermissionError:
        pytest.skip("mknod needs privileges here")
    with world(tmp_path, ["tty.pdf"]) as conn:
        error = read_within(conn, documents(conn)[0], 5)
    assert isinstance(error, DocumentUnavailable) and "is a character device" in str(error)


class Stalling(http.server.BaseHTTPRequestHandler):
    """Sends the headers and a first block of a document, then nothing more."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"%PDF-1.4" + b" " * 1000)
        self.wfile.flush()
        time.sleep(10)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stalling_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/doc.pdf"
    finally:
        server.shutdown()
        server.server_close()


def test_a_source_that_stops_sending_fails_the_document_within_the_limit(tmp_path: Path, stalling_server: str) -> None:
    with world(tmp_path, [stalling_server], kind="url", read_timeout_seconds=0.5) as conn:
        started = time.monotonic()
        error = read_within(conn, documents(conn)[0], 8)
        elapsed = time.monotonic() - started
    assert isinstance(error, DocumentUnavailable) and "no data within 0.5 s" in str(error)
    assert elapsed < 3


def test_timed_passes_every_chunk_and_the_source_error_through() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise DocumentUnavailable("gone mid-way")

    got: list[bytes] = []
    with pytest.raises(DocumentUnavailable, match="gone mid-way"):
        for c in timed(chunks(), 2, "doc"):
            got.append(c)
    assert got == [b"a", b"b"]


def test_the_unified_system_stopping_mid_document_fails_it_within_the_limit(stalling_server: str) -> None:
    from connectors.sources.unified import UnifiedConnector
    from schemas.config import UnifiedSource
    from schemas.model import Document, DocumentGroup

    base = stalling_server.rsplit("/", 1)[0]
    config = UnifiedSource.model_validate({"name": "unified", "kind": "unified", "base_url": base,
                                           "timeout_seconds": 30, "read_timeout_seconds": 0.5, "retries": 0})
    doc = Document(group=DocumentGroup.RESULT, title="t", file_name="t.pdf", locator="F1")
    conn = UnifiedConnector(config)
    try:
        started = time.monotonic()
        with pytest.raises(DocumentUnavailable, match=r"no data within 0\.5 s"):
            b"".join(conn.open_document(doc))
        assert time.monotonic() - started < 5
    finally:
        conn.close()


def test_a_link_loop_and_a_hung_open_fail_the_document_only(tmp_path: Path) -> None:
    from connectors.sources import reads

    files = tmp_path / "files"
    files.mkdir()
    (files / "loop.pdf").symlink_to(files / "loop.pdf")
    with world(tmp_path, ["loop.pdf"]) as conn:
        error = read_within(conn, documents(conn)[0], 5)
    assert isinstance(error, DocumentUnavailable) and "loop.pdf" in str(error)

    def hung() -> None:  # what os.stat does on a network mount whose server has gone
        time.sleep(5)

    started = time.monotonic()
    with pytest.raises(DocumentUnavailable, match=r"not opened within 0\.3 s"):
        reads.within(0.3, hung, "doc")
    assert time.monotonic() - started < 2


def test_documents_read_one_after_another_share_one_helper_and_a_stuck_one_is_never_reused() -> None:
    """Each read runs on a helper thread (so a hung one can be abandoned); starting a thread per
    document cost as much CPU as fetching a small one, so helpers are kept for the next document,
    but never one still stuck in an abandoned read."""
    from connectors.sources import reads

    readers: set[threading.Thread] = set()

    def chunks() -> Iterator[bytes]:
        readers.add(threading.current_thread())
        yield b"ab"

    for i in range(20):
        assert b"".join(timed(chunks(), 2, f"doc {i}")) == b"ab"
        assert reads.within(2, lambda: readers.add(threading.current_thread()), "doc") is None
    assert len(readers) == 1

    release = threading.Event()

    def stuck() -> Iterator[bytes]:
        yield b"a"
        release.wait(10)  # a read that does not return
        yield b"b"

    with pytest.raises(DocumentUnavailable, match=r"no data within 0\.2 s"):
        b"".join(timed(stuck(), 0.2, "doc"))
    assert b"".join(timed(iter([b"c"]), 2, "next doc")) == b"c"  # a fresh helper, not the stuck one
    release.set()


def test_a_forked_worker_never_hands_a_read_to_its_parents_helpers() -> None:
    """A night's worker processes are forked: the parent's idle helpers are threads the child does
    not have, and a read handed to one would wait for nothing and fail a sound document."""
    assert b"".join(timed(iter([b"parent"]), 2, "doc")) == b"parent"  # leaves an idle helper here
    pid = os.fork()
    if pid == 0:
        try:
            ok = b"".join(timed(iter([b"child"]), 1, "doc")) == b"child"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
