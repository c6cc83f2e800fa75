"""SqlConnector against the two demo self-built systems, driven only by their guidang.yaml entries.

Expected values are read from the tables with the sqlite3 module directly (not through the
connector), so a wrong mapping, a lost document or a changed byte shows as a difference. The same
systems are then loaded into fresh PostgreSQL and MariaDB databases and must give the same matters.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pypdf
import pytest

from connectors.sources.sql import SqlConnector
from guidang_demo.selfbuilt import sjjc_source, tzxm_source
from guidang_demo.selfbuilt_data import write_sjjc, write_tzxm
from schemas.config import SqlSource
from schemas.errors import DocumentUnavailable, SourceUnavailable
from schemas.findings import GuidangError
from schemas.model import DocumentGroup, InvalidMatter, Matter
from tests.dbservers import fresh_database
from tests.selfbuilt_support import copy_system

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALL_SINCE = datetime(2020, 1, 1, tzinfo=SHANGHAI)
ALL_UNTIL = datetime(2030, 1, 1, tzinfo=SHANGHAI)
TZXM_GROUPS = {"01": DocumentGroup.APPLICATION, "02": DocumentGroup.PROCESS, "03": DocumentGroup.RESULT}
SJJC_GROUPS = {"notice": DocumentGroup.APPLICATION, "onsite": DocumentGroup.PROCESS, "result": DocumentGroup.RESULT}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("selfbuilt")
    tzxm = write_tzxm(base / "sources" / "tzxm.sqlite", seed=7)
    sjjc = write_sjjc(base / "sources" / "sjjc.sqlite", base / "sources" / "sjjc_files", seed=7)
    return {"base": base, "tzxm": tzxm, "sjjc": sjjc}


def connector(base: Path, config: dict[str, Any], **kwargs: Any) -> SqlConnector:
    return SqlConnector(SqlSource.model_validate(config), base_dir=base, backoff_seconds=0.01, **kwargs)


def rows(db: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def local(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def collect(conn: SqlConnector, since: datetime = ALL_SINCE, until: datetime = ALL_UNTIL) -> dict[str, Any]:
    return {m.project_id: m for m in conn.completed_between(since, until)}


def read(conn: SqlConnector, doc: Any) -> bytes:
    return b"".join(conn.open_document(doc))


# ---------------------------------------------------------------------------- tzxm (BLOB)


def test_tzxm_every_matter_arrives_with_the_fields_of_its_row(world: dict[str, Any]) -> None:
    db = world["base"] / "sources" / "tzxm.sqlite"
    with connector(world["base"], tzxm_source()) as conn:
        got = collect(conn)
    assert sorted(got) == sorted(world["tzxm"]["project_ids"])  # in-progress rows (BLZT=SL) stay out
    assert all(isinstance(m, Matter) for m in got.values())
    expected = rows(db, "SELECT a.*, p.JSDW, p.TYSHXYDM FROM XM_APPROVAL a JOIN XM_PROJECT p USING (XMDM) "
                        "WHERE a.BLZT = 'BJ'")
    assert len(expected) == world["tzxm"]["matters"]
    for r in expected:
        m = got[r["SPBH"]]
        assert (m.source, m.service_code, m.service_name, m.matter_type, m.agency, m.agency_code) == (
            "tzxm", r["SXBM"], r["SXMC"], r["SXLX"], r["SPBM"], r["SPBMDM"])
        assert (m.applicant.name, m.applicant.card_type, m.applicant.card_number) == (
            r["JSDW"], "统一社会信用代码", r["TYSHXYDM"])
        assert (m.result, m.result_document_number, m.handling_type, m.region_code) == (
            r["SPJG"], r["PFWH"], r["BJLX"], r["XZQHDM"])
        assert m.received_at == local(r["SLSJ"]) and m.completed_at == local(r["BJSJ"])
        assert m.decided_at == local(r["SPSJ"]) and m.updated_at == local(r["GXSJ"])
        assert m.completed_at.utcoffset() == timedelta(hours=8)
        steps = rows(db, "SELECT HJMC, BLR, KSSJ FROM XM_SPLC WHERE SPBH = ? ORDER BY SXH", r["SPBH"])
        assert [(s.name, s.actor, s.started_at) for s in m.steps] == [
            (s["HJMC"], s["BLR"], local(s["KSSJ"])) for s in steps]
        docs = rows(db, "SELECT FJLB, FJMC, WJM, WJDX, WJHXZ FROM XM_ATTACHMENT WHERE SPBH = ? ORDER BY FJLB, FJID",
                    r["SPBH"])
        assert [(d.group, d.title, d.file_name, d.size, d.source_sha256) for d in m.documents] == [
            (TZXM_GROUPS[d["FJLB"]], d["FJMC"], d["WJM"], d["WJDX"], d["WJHXZ"]) for d in docs]
        assert 2 <= len(m.documents) <= 6 and any(d.group is DocumentGroup.RESULT for d in m.documents)


def test_tzxm_blobs_stream_in_slices_with_the_exact_bytes(world: dict[str, Any]) -> None:
    db = world["base"] / "sources" / "tzxm.sqlite"
    stored = {(r["SPBH"], r["WJM"]): r["FJNR"] for r in rows(db, "SELECT SPBH, WJM, FJNR FROM XM_ATTACHMENT")}
    null_blob = next(d for d in world["tzxm"]["defects"] if d["kind"] == "null-blob")
    with connector(world["base"], tzxm_source(), chunk_size=700) as conn:
        matters = collect(conn)
        checked = 0
        for m in matters.values():
            for doc in m.documents:
                if (m.project_id, doc.file_name) == (null_blob["project_id"], null_blob["file_name"]):
                    continue
                chunks = list(conn.open_document(doc))
                data = b"".join(chunks)
                assert data == stored[(m.project_id, doc.file_name)]
                assert hashlib.sha256(data).hexdigest() == doc.source_sha256 and len(data) == doc.size
                assert max(len(c) for c in chunks) <= 700 and (len(chunks) > 1) == (len(data) > 700)
                checked += 1
    assert checked == world["tzxm"]["documents"] - 1


def test_tzxm_defects_end_where_they_belong(world: dict[str, Any]) -> None:
    defects = {d["kind"]: d for d in world["tzxm"]["defects"]}
    assert set(defects) == {"null-blob", "broken-pdf"}
    with connector(world["base"], tzxm_source()) as conn:
        matters = collect(conn)
        null = defects["null-blob"]
        doc = next(d for d in matters[null["project_id"]].documents if d.file_name == null["file_name"])
        with pytest.raises(DocumentUnavailable) as info:
            read(conn, doc)
        assert null["project_id"] in str(info.value) and null["file_name"] in str(info.value)
        assert "NULL" in str(info.value)
        broken = defects["broken-pdf"]
        doc = next(d for d in matters[broken["project_id"]].documents if d.file_name == broken["file_name"])
        data = read(conn, doc)  # the connector hands the bytes on; the packager's PDF check refuses them
        assert data.startswith(b"%PDF-") and hashlib.sha256(data).hexdigest() == doc.source_sha256
        with pytest.raises(pypdf.errors.PdfReadError):
            pypdf.PdfReader(io.BytesIO(data), strict=True)


def test_window_is_since_exclusive_until_inclusive(world: dict[str, Any]) -> None:
    with connector(world["base"], tzxm_source()) as conn:
        ordered = list(conn.completed_between(ALL_SINCE, ALL_UNTIL))
        times = [m.updated_at for m in ordered]
        assert times == sorted(times)  # oldest first
        assert len(set(times)) == len(times)
        since, until = times[10], times[15]
        # the bounds given in UTC: the connector converts them to the source's local time
        got = [m.project_id for m in conn.completed_between(since.astimezone(UTC), until.astimezone(UTC))]
        assert got == [m.project_id for m in ordered[11:16]]
        just_before = until - timedelta(seconds=1)
        assert [m.project_id for m in conn.completed_between(since, just_before)] == got[:-1]
        assert list(conn.completed_between(until, until)) == []


def test_fetch_matter_by_project_id(world: dict[str, Any]) -> None:
    with connector(world["base"], tzxm_source()) as conn:
        some = list(conn.completed_between(ALL_SINCE, ALL_UNTIL))[7]
        assert conn.fetch_matter(some.project_id) == some
        assert conn.fetch_matter("TZ-NO-SUCH") is None


def test_a_row_without_project_id_is_an_invalid_matter(world: dict[str, Any]) -> None:
    pid = world["tzxm"]["project_ids"][2]
    config = tzxm_source()
    config["matters_query"] = config["matters_query"].replace(
        "SELECT a.SPBH,", f"SELECT NULLIF(a.SPBH, '{pid}') AS SPBH,")
    with connector(world["base"], config) as conn:
        got = list(conn.completed_between(ALL_SINCE, ALL_UNTIL))
    assert len(got) == len(world["tzxm"]["project_ids"])
    bad = [m for m in got if isinstance(m, InvalidMatter)]
    assert len(bad) == 1 and bad[0].project_id.startswith("(row ")
    assert bad[0].problems == [f"source tzxm, project {bad[0].project_id}: field project_id (column SPBH): missing"]
    assert pid not in {m.project_id for m in got}


def test_acknowledge_writes_the_archival_code_back(tmp_path: Path, world: dict[str, Any]) -> None:
    shutil.copytree(world["base"] / "sources", tmp_path / "sources", ignore=shutil.ignore_patterns("sjjc*"))
    pid = world["tzxm"]["project_ids"][3]
    with connector(tmp_path, tzxm_source()) as conn:
        conn.acknowledge(pid, "Z109-WS·2026·Y·FG-0001")
    row = rows(tmp_path / "sources" / "tzxm.sqlite", "SELECT GDZT, GDDH, GDSJ FROM XM_APPROVAL WHERE SPBH = ?", pid)
    assert (row[0]["GDZT"], row[0]["GDDH"]) == ("1", "Z109-WS·2026·Y·FG-0001") and row[0]["GDSJ"]
    others = rows(tmp_path / "sources" / "tzxm.sqlite", "SELECT COUNT(*) FROM XM_APPROVAL WHERE GDZT = '1'")
    assert others[0][0] == 1


# ---------------------------------------------------------------------------- sjjc (files on disk)


def test_sjjc_every_matter_arrives_and_files_stream(world: dict[str, Any]) -> None:
    base, summary = world["base"], world["sjjc"]
    db = base / "sources" / "sjjc.sqlite"
    missing = next(d for d in summary["defects"] if d["kind"] == "missing-file")
    disordered = next(d for d in summary["defects"] if d["kind"] == "dates-out-of-order")
    with connector(base, sjjc_source()) as conn:
        got = collect(conn)
        assert sorted(got) == sorted(summary["project_ids"])  # the open record stays out
        expected = rows(db, "SELECT r.*, t.item_code, t.dept_name FROM inspection_record r "
                            "JOIN inspection_task t USING (task_no) WHERE r.status = 'closed'")
        streamed = 0
        for r in expected:
            m = got[r["record_no"]]
            if r["record_no"] == disordered["project_id"]:
                assert isinstance(m, InvalidMatter)
                continue
            assert isinstance(m, Matter)
            assert (m.matter_type, m.service_code, m.agency, m.applicant.card_number, m.result) == (
                "06", r["item_code"], r["dept_name"], r["target_id_no"], r["conclusion"])
            assert m.received_at == local(r["accepted_at"]) and m.updated_at == local(r["modified_at"])
            atts = rows(db, "SELECT * FROM attachment WHERE record_no = ? ORDER BY att_id", r["record_no"])
            by_group = sorted(atts, key=lambda a: list(SJJC_GROUPS).index(a["kind"]))
            assert [(d.group, d.file_name, d.size) for d in m.documents] == [
                (SJJC_GROUPS[a["kind"]], a["original_name"], a["byte_size"]) for a in by_group]
            assert 2 <= len(m.documents) <= 6 and m.documents[-1].group is DocumentGroup.RESULT
            for doc, att in zip(m.documents, by_group, strict=True):
                if att["att_id"] == missing.get("document"):
                    with pytest.raises(DocumentUnavailable) as info:
                        read(conn, doc)
                    assert missing["project_id"] in str(info.value) and missing["file_name"] in str(info.value)
                    continue
                assert read(conn, doc) == (base / "sources" / "sjjc_files" / att["rel_path"]).read_bytes()
                streamed += 1
    assert streamed == summary["documents"] - 1 - len(
        rows(db, "SELECT 1 FROM attachment WHERE record_no = ?", disordered["project_id"]))


def test_sjjc_dates_out_of_order_is_an_invalid_matter_without_personal_data(world: dict[str, Any]) -> None:
    disordered = next(d for d in world["sjjc"]["defects"] if d["kind"] == "dates-out-of-order")
    card = rows(world["base"] / "sources" / "sjjc.sqlite", "SELECT target_id_no FROM inspection_record "
                "WHERE record_no = ?", disordered["project_id"])[0][0]
    assert len(card) == 18  # the defect record is a 个体工商户: an identity number
    with connector(world["base"], sjjc_source()) as conn:
        bad = conn.fetch_matter(disordered["project_id"])
    assert isinstance(bad, InvalidMatter)
    assert (bad.source, bad.project_id) == ("sjjc", disordered["project_id"])
    assert bad.updated_at is not None and bad.updated_at.tzinfo is not None
    text = " ".join(bad.problems)
    assert "sjjc" in text and disordered["project_id"] in text
    assert "completed_at" in text and "received_at=accepted_at" in text and "is before" in text
    assert card not in text and card not in str(bad.raw)
    assert bad.raw["target_id_no"] == card[:6] + "********" + card[-4:]


def test_path_escaping_the_root_is_refused(tmp_path: Path, world: dict[str, Any]) -> None:
    shutil.copytree(world["base"] / "sources", tmp_path / "sources", ignore=shutil.ignore_patterns("tzxm*"))
    db = tmp_path / "sources" / "sjjc.sqlite"
    outside = tmp_path / "sources" / "secret.pdf"
    outside.write_bytes(b"%PDF-1.4 not for the archive")
    (tmp_path / "sources" / "sjjc_files" / "link.pdf").symlink_to(outside)
    pid = world["sjjc"]["project_ids"][0]
    attacks = ["../secret.pdf", str(outside), "2026/../../secret.pdf", "link.pdf"]
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT att_id FROM attachment WHERE record_no = ? ORDER BY att_id", (pid,))]
    for att_id, path in zip(ids, attacks, strict=False):
        con.execute("UPDATE attachment SET rel_path = ? WHERE att_id = ?", (path, att_id))
    con.commit()
    con.close()
    with connector(tmp_path, sjjc_source()) as conn:
        matter = conn.fetch_matter(pid)
        assert isinstance(matter, Matter)
        refused = 0
        for doc in matter.documents[: len(attacks)]:
            with pytest.raises(DocumentUnavailable, match="escapes the document root"):
                read(conn, doc)
            refused += 1
    assert refused == min(len(ids), len(attacks)) >= 2


@contextmanager
def http_server(handler: Any) -> Iterator[int]:
    """A local HTTP server on a thread of its own; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def sjjc_by_url(base_url: str) -> dict[str, Any]:
    """sjjc with its documents by URL: `base_url` followed by the file's relative path."""
    config = sjjc_source()
    config["documents_query"] = (
        "SELECT att_id, kind, title, original_name, byte_size, content_type,\n"
        f"       '{base_url}' || rel_path AS file_url\n"
        "  FROM attachment WHERE record_no = :project_id"
    )
    config["content"] = {"kind": "url", "column": "file_url"}
    return config


def test_documents_by_url_stream_over_http(world: dict[str, Any]) -> None:
    files = world["base"] / "sources" / "sjjc_files"
    with http_server(partial(QuietHandler, directory=str(files))) as port:
        config = sjjc_by_url(f"http://127.0.0.1:{port}/")
        missing = next(d for d in world["sjjc"]["defects"] if d["kind"] == "missing-file")
        with connector(world["base"], config, chunk_size=512) as conn:
            matter = conn.fetch_matter(missing["project_id"])
            assert isinstance(matter, Matter)
            for doc in matter.documents:
                if doc.file_name == missing["file_name"]:
                    with pytest.raises(DocumentUnavailable, match="HTTP 404"):
                        read(conn, doc)
                else:
                    rel = doc.locator.split(str(port) + "/", 1)[1].split('"')[0]
                    assert read(conn, doc) == (files / rel).read_bytes()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class CutOnceHandler(QuietHandler):
    """Serves `files`; the first GET of each path sends half its body and hangs up (the
    Content-Length promising all of it), later ones honour `Range: bytes=N-` unless told not to."""

    files: dict[str, bytes]
    honour_range: bool
    served: dict[str, list[str | None]]  # path -> the Range header of each request

    def do_GET(self) -> None:
        path = self.path.lstrip("/")
        data = self.files.get(path)
        if data is None:
            self.send_error(404)
            return
        ranges = self.served.setdefault(path, [])
        ranges.append(self.headers.get("Range"))
        wanted = self.headers.get("Range")
        start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted and self.honour_range else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if len(ranges) == 1:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data[start:])


@pytest.mark.parametrize("honour_range", [True, False], ids=["range", "range-ignored"])
def test_documents_by_url_cut_short_resume_with_range(world: dict[str, Any], honour_range: bool) -> None:
    """The self-built systems stream URLs with the unified system's streamer: a body cut short is
    asked for again from the byte it stopped at, and every byte arrives exactly once."""
    files_dir = world["base"] / "sources" / "sjjc_files"
    files = {p.relative_to(files_dir).as_posix(): p.read_bytes() for p in files_dir.rglob("*") if p.is_file()}
    served: dict[str, list[str | None]] = {}
    handler = type("Handler", (CutOnceHandler,), {"files": files, "honour_range": honour_range, "served": served})
    with http_server(handler) as port:
        missing = next(d for d in world["sjjc"]["defects"] if d["kind"] == "missing-file")
        pid = next(p for p in world["sjjc"]["project_ids"] if p != missing["project_id"])
        with connector(world["base"], sjjc_by_url(f"http://127.0.0.1:{port}/")) as conn:
            matter = conn.fetch_matter(pid)
            assert isinstance(matter, Matter) and len(matter.documents) >= 2
            for doc in matter.documents:
                rel = doc.locator.split(str(port) + "/", 1)[1].split('"')[0]
                assert read(conn, doc) == files[rel]
                assert served[rel] == [None, f"bytes={len(files[rel]) // 2}-"]  # cut once, resumed once


# ---------------------------------------------------------------------------- failures


class UnavailableHandler(QuietHandler):
    authorization: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.authorization.append(self.headers.get("Authorization"))
        self.send_error(503)


def test_document_url_failures_never_name_its_password(world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with (http_server(UnavailableHandler) as port,
          connector(world["base"], sjjc_by_url(f"http://archiver:pa55-w0rd@127.0.0.1:{port}/")) as conn):
        matter = conn.fetch_matter(world["sjjc"]["project_ids"][0])
        assert isinstance(matter, Matter)
        with pytest.raises(SourceUnavailable) as info:
            read(conn, matter.documents[0])
    message = str(info.value)
    assert f"http://127.0.0.1:{port}/" in message and "HTTP 503" in message and "3 attempts" in message
    assert "attempt 3 of 3" in caplog.text
    assert "pa55-w0rd" not in message and "pa55-w0rd" not in caplog.text
    basic = "Basic " + base64.b64encode(b"archiver:pa55-w0rd").decode()
    assert UnavailableHandler.authorization[-3:] == [basic] * 3  # the credentials still go along


def test_unreachable_database_raises_source_unavailable_without_the_password() -> None:
    config = {**tzxm_source("postgresql+psycopg2://guidang:s3cr3t-Pa55@127.0.0.1:1/tzxm"), "name": "tzxm"}
    conn = SqlConnector(SqlSource.model_validate(config), base_dir=Path("."), retries=2, backoff_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as info:
        list(conn.completed_between(ALL_SINCE, ALL_UNTIL))
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "s3cr3t-Pa55" not in message and "***" in message and "3 attempts" in message
    assert "127.0.0.1:1" in message and elapsed >= 0.05 + 0.1  # backed off twice
    conn.close()


def test_missing_sqlite_file_is_unavailable_and_not_created(tmp_path: Path) -> None:
    with connector(tmp_path, tzxm_source()) as conn, pytest.raises(SourceUnavailable, match="not found"):
        list(conn.completed_between(ALL_SINCE, ALL_UNTIL))
    assert not (tmp_path / "sources" / "tzxm.sqlite").exists()


def test_configuration_mistakes_are_refused_with_the_field_named(world: dict[str, Any]) -> None:
    bad = tzxm_source()
    bad["columns"] = {**bad["columns"], "applicant_nmae": "JSDW"}
    del bad["columns"]["service_name"]
    with pytest.raises(GuidangError) as info:
        connector(world["base"], bad)
    assert "columns.applicant_nmae" in str(info.value) and "columns.service_name" in str(info.value)
    no_until = tzxm_source()
    no_until["matters_query"] = no_until["matters_query"].replace("<= :until", "<= CURRENT_TIMESTAMP")
    with pytest.raises(GuidangError, match=":until"):
        connector(world["base"], no_until)
    wrong = tzxm_source()
    wrong["columns"] = {**wrong["columns"], "license_number": "ZZBH"}
    with connector(world["base"], wrong) as conn, pytest.raises(GuidangError, match="ZZBH") as info:
        list(conn.completed_between(ALL_SINCE, ALL_UNTIL))
    assert not isinstance(info.value, SourceUnavailable)


# ---------------------------------------------------------------------------- PostgreSQL, MariaDB


@pytest.fixture(scope="module")
def sqlite_matters(world: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, config in (("tzxm", tzxm_source()), ("sjjc", sjjc_source())):
        with connector(world["base"], config) as conn:
            out[name] = {pid: comparable(m) for pid, m in collect(conn).items()}
    return out


def comparable(m: Matter | InvalidMatter) -> dict[str, Any]:
    """A matter as a dict; an InvalidMatter without `raw`, which keeps each database's own spelling
    of a value (SQLite hands a DATETIME back as text, the servers as datetime)."""
    return m.model_dump(exclude={"raw"} if isinstance(m, InvalidMatter) else None)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def server_db(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_database(request.param) as url:
        yield url


def test_same_systems_on_a_database_server(server_db: str, world: dict[str, Any],
                                           sqlite_matters: dict[str, dict[str, Any]]) -> None:
    base = world["base"]
    copied_tzxm = copy_system("tzxm", base / "sources" / "tzxm.sqlite", server_db)
    copied_sjjc = copy_system("sjjc", base / "sources" / "sjjc.sqlite", server_db)
    assert copied_tzxm["XM_ATTACHMENT"] == world["tzxm"]["documents"]
    assert copied_sjjc["attachment"] == world["sjjc"]["documents"]
    stored = rows(base / "sources" / "tzxm.sqlite", "SELECT FJID, FJNR FROM XM_ATTACHMENT")
    blobs = {r["FJID"]: r["FJNR"] for r in stored}

    with connector(base, tzxm_source(server_db), chunk_size=1000) as conn:
        got = collect(conn)
        assert {pid: comparable(m) for pid, m in got.items()} == sqlite_matters["tzxm"]
        null = next(d for d in world["tzxm"]["defects"] if d["kind"] == "null-blob")
        for m in got.values():
            for doc in m.documents:
                key = int(doc.locator.split('"key": ')[1].rstrip("}"))
                if key == null["document"]:
                    with pytest.raises(DocumentUnavailable, match="NULL"):
                        read(conn, doc)
                else:
                    assert read(conn, doc) == blobs[key]
        ordered = sorted(got.values(), key=lambda m: m.updated_at)
        window = [m.project_id for m in conn.completed_between(ordered[4].updated_at, ordered[9].updated_at)]
        assert window == [m.project_id for m in ordered[5:10]]
        conn.acknowledge(ordered[0].project_id, "Z109-WS·2026·D30·FG-0001")

    with connector(base, sjjc_source(server_db)) as conn:
        got_sjjc = collect(conn)
        assert {pid: comparable(m) for pid, m in got_sjjc.items()} == sqlite_matters["sjjc"]
        bad = [m for m in got_sjjc.values() if isinstance(m, InvalidMatter)]
        assert [m.project_id for m in bad] == [
            d["project_id"] for d in world["sjjc"]["defects"] if d["kind"] == "dates-out-of-order"]

    from sqlalchemy import create_engine, text

    engine = create_engine(server_db)
    try:
        with engine.connect() as c:
            ack = c.execute(text("SELECT GDZT, GDDH FROM XM_APPROVAL WHERE SPBH = :p"),
                            {"p": ordered[0].project_id}).one()
    finally:
        engine.dispose()
    assert tuple(ack) == ("1", "Z109-WS·2026·D30·FG-0001")
