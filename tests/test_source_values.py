"""One bad value never stops a self-built source: every value is decoded and parsed per row.

A small department database is built by each test, on SQLite and on real PostgreSQL and MariaDB
servers, holding what real departmental databases hold: GBK bytes written by an old client into a
text column (a latin1 column on MariaDB, a SQL_ASCII database on PostgreSQL), a 办结时间 in the
year 0202, an epoch number in a text date column, an update value of another type, and a listing
row without its 办件编号. The good rows must arrive as matters; each bad one is named, with its
column and its raw value escaped, and the source as a whole never fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from connectors.sources.sql import SqlConnector
from schemas.config import SqlSource
from schemas.model import InvalidMatter, Matter
from tests.dbservers import fresh_database

SHANGHAI = ZoneInfo("Asia/Shanghai")
SINCE, UNTIL = datetime(2020, 1, 1, tzinfo=SHANGHAI), datetime(2026, 12, 1, tzinfo=SHANGHAI)
START, END = datetime(1000, 1, 1, tzinfo=SHANGHAI), datetime(2026, 12, 1, tzinfo=SHANGHAI)
GBK_AGENCY = "张三县审批局"
GBK_HEX = GBK_AGENCY.encode("gbk").hex()


def source(url: str, **extra: Any) -> SqlSource:
    config: dict[str, Any] = {
        "name": "dept", "kind": "sql", "url": url,
        "matters_query": "SELECT pid, agency, applicant, done, upd FROM m WHERE status = 'BJ' "
                         "AND upd > :since AND upd <= :until ORDER BY upd",
        "columns": {"project_id": "pid", "agency": "agency", "applicant_name": "applicant",
                    "completed_at": "done", "updated_at": "upd"},
        "constants": {"service_code": "S1", "service_name": "审批", "matter_type": "01"},
        "documents_query": "SELECT fid, pid, grp, fname, title, body FROM d WHERE pid = :project_id",
        "document_columns": {"key": "fid", "group": "grp", "file_name": "fname", "title": "title"},
        "content": {"kind": "blob", "column": "body"},
        "count_query": "SELECT agency, count(*) AS n FROM m WHERE status = 'BJ' AND done >= :start AND done < :end "
                       "GROUP BY agency",
        "count_columns": {"agency": "agency", "count": "n"},
        "list_query": "SELECT pid, agency, done, upd FROM m WHERE status = 'BJ' AND done >= :start AND done < :end",
        "list_columns": {"project_id": "pid", "agency": "agency", "completed_at": "done", "updated_at": "upd"},
    }
    return SqlSource.model_validate(config | extra)


def connector(config: SqlSource) -> SqlConnector:
    return SqlConnector(config, base_dir=Path("."), backoff_seconds=0.01)


def sqlite_db(path: Path, rows: list[str], docs: list[str]) -> str:
    """A department database on SQLite; text dates as the system writes them, values as SQL."""
    import sqlite3

    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE m (pid TEXT, agency TEXT, applicant TEXT, done TEXT, upd DATETIME, status TEXT);"
        "CREATE TABLE d (fid INTEGER PRIMARY KEY, pid TEXT, grp TEXT, fname TEXT, title TEXT, body BLOB);")
    for r in rows:
        con.execute(f"INSERT INTO m VALUES ({r})")
    for r in docs:
        con.execute(f"INSERT INTO d VALUES ({r})")
    con.commit()
    con.close()
    return f"sqlite:///{path}"


GOOD = [
    "'P1', '一号审批局', '某公司', '2025-03-01 10:00:00', '2025-03-01 10:00:00', 'BJ'",
    "'P2', '一号审批局', '某公司', '2025/3/2 9:05', '2025-03-02 10:00:00', 'BJ'",
]
GOOD_DOCS = [
    "1, 'P1', '结果', 'a.pdf', '批复', x'25504446'",
    "2, 'P2', '结果', 'b.pdf', '批复', x'25504446'",
]


def collect(conn: SqlConnector) -> dict[str, Matter | InvalidMatter]:
    return {m.project_id: m for m in conn.completed_between(SINCE, UNTIL)}


@pytest.mark.parametrize(("done", "shown"), [
    ("'0202-12-02 00:00:00'", "before 1949"),
    ("'1796263200'", "not a date-time: '1796263200'"),  # strptime's %Y%m%d%H%M%S reads it as 1796
    ("'2025-13-40'", "not a date-time"),
])
def test_a_poison_date_quarantines_its_row_only(tmp_path: Path, done: str, shown: str) -> None:
    poisoned = f"'P3', '一号审批局', '某公司', {done}, '2025-03-03 10:00:00', 'BJ'"
    url = sqlite_db(tmp_path / "d.sqlite", [*GOOD, poisoned],
                    [*GOOD_DOCS, "3, 'P3', '结果', 'c.pdf', '批复', x'25504446'"])
    with connector(source(url)) as conn:
        got = collect(conn)
    assert isinstance(got["P1"], Matter) and isinstance(got["P2"], Matter)
    assert got["P2"].completed_at == datetime(2025, 3, 2, 9, 5, tzinfo=SHANGHAI)
    bad = got["P3"]
    assert isinstance(bad, InvalidMatter)
    assert [p.code for p in bad.findings] == ["Q-SOURCE-VALUE"]
    assert "field completed_at (column done)" in bad.problems[0] and shown in bad.problems[0]


def test_earliest_year_is_configurable(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "d.sqlite", [*GOOD], GOOD_DOCS)
    with connector(source(url, earliest_year=2025)) as conn:
        assert all(isinstance(m, Matter) for m in collect(conn).values())
    with connector(source(url, earliest_year=2026)) as conn:
        assert all("before 2026" in m.problems[0] for m in collect(conn).values() if isinstance(m, InvalidMatter))
        assert len(collect(conn)) == 2


def test_gbk_bytes_in_a_text_column_are_decoded_by_the_fallback_or_quarantined(tmp_path: Path) -> None:
    bad_row = f"'P3', CAST(x'{GBK_HEX}' AS TEXT), '某公司', '2025-03-03 10:00:00', '2025-03-03 10:00:00', 'BJ'"
    bad_doc = f"3, 'P3', '结果', 'c.pdf', CAST(x'{'批复'.encode('gbk').hex()}' AS TEXT), x'25504446'"
    url = sqlite_db(tmp_path / "d.sqlite", [*GOOD, bad_row], [*GOOD_DOCS, bad_doc])
    with connector(source(url)) as conn:
        got = collect(conn)
        counts = conn.count_completed(START, END)  # the count never fails either
        listed = list(conn.list_completed(START, END) or [])
    assert isinstance(got["P1"], Matter) and isinstance(got["P2"], Matter)
    bad = got["P3"]
    assert isinstance(bad, InvalidMatter) and {p.code for p in bad.findings} == {"Q-SOURCE-VALUE"}
    escaped = repr(GBK_AGENCY.encode("gbk"))
    assert any("field agency (column agency): cannot be decoded as utf-8" in p and escaped in p for p in bad.problems)
    assert any("document 1" in p and "field title (column title)" in p for p in bad.problems)
    assert bad.raw["agency"] == escaped  # the record keeps the raw value, escaped
    assert sum(c.count for c in counts) == 3 and len(listed) == 3
    with connector(source(url, fallback_encoding="gb18030")) as conn:
        got = collect(conn)
    assert isinstance(got["P3"], Matter) and got["P3"].agency == GBK_AGENCY
    assert got["P3"].documents[0].title == "批复"


def test_unorderable_update_values_are_named_and_a_blank_id_does_not_stop_the_listing(tmp_path: Path) -> None:
    rows = [*GOOD,
            "'P4', '一号审批局', '某公司', '2025-03-04 10:00:00', 1796263200, 'BJ'",  # INTEGER among TEXT
            "'P5', '一号审批局', '某公司', '2025-03-05 10:00:00', '0202-01-01 00:00:00', 'BJ'",
            "'', '一号审批局', '某公司', '2025-03-06 10:00:00', '2025-03-06 10:00:00', 'BJ'",
            "'P7', '一号审批局', '某公司', '2025-03-07 10:00:00', '', 'BJ'"]
    url = sqlite_db(tmp_path / "d.sqlite", rows, GOOD_DOCS)
    with connector(source(url)) as conn:
        got = collect(conn)
        assert sorted(conn.unordered or []) == [
            "P4 (upd = 1796263200)", "P5 (upd = '0202-01-01 00:00:00')", "P7 (upd = blank)"]
        listed = list(conn.list_completed(START, END) or [])
        unlisted = conn.unlisted
    assert sorted(k for k in got if not k.startswith("(row")) == ["P1", "P2"]
    assert [i.project_id for i in listed] == ["P1", "P2", "P4", "P5", "P7"]
    assert next(i for i in listed if i.project_id == "P4").updated_at is None  # listed, update time unknown
    assert unlisted == ["source dept: list_query row 5: field project_id (column pid): missing"]


# ------------------------------------------------------------------ PostgreSQL and MariaDB


@pytest.fixture(params=["postgresql", "mariadb"])
def legacy_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server database holding one row of GBK bytes the way legacy clients leave them."""
    kind = request.param
    options = "ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'" if kind == "postgresql" else ""
    with fresh_database(kind, options) as url:
        engine = create_engine(url)
        text_type = "VARCHAR(100) CHARACTER SET latin1" if kind == "mariadb" else "VARCHAR(100)"
        stamp = "TIMESTAMP" if kind == "postgresql" else "DATETIME"
        blob = "BYTEA" if kind == "postgresql" else "LONGBLOB"
        gbk = f"convert_from(decode('{GBK_HEX}', 'hex'), 'SQL_ASCII')" if kind == "postgresql" else f"x'{GBK_HEX}'"
        with engine.begin() as c:
            c.execute(text(f"CREATE TABLE m (pid VARCHAR(32), agency {text_type}, applicant VARCHAR(100), "
                           f"done {stamp}, upd {stamp}, status VARCHAR(2))"))
            c.execute(text(f"CREATE TABLE d (fid INTEGER, pid VARCHAR(32), grp VARCHAR(8), fname VARCHAR(100), "
                           f"title VARCHAR(100), body {blob})"))
            if kind == "mariadb":
                c.execute(text("SET SESSION sql_mode = ''"))  # as old servers ran: zero dates allowed
            poison = "'0044-03-15 BC'" if kind == "postgresql" else "'0000-00-00 00:00:00'"
            for pid, agency, day, done in (("P1", "'Dept One'", 1, "'2025-03-01 10:00:00'"),
                                           ("P2", gbk, 2, "'2025-03-02 10:00:00'"),
                                           ("P3", "'Dept One'", 3, poison)):
                c.execute(text(f"INSERT INTO m VALUES ('{pid}', {agency}, 'ACME', {done}, "
                               f"'2025-03-0{day} 10:00:00', 'BJ')"))
                c.execute(text(f"INSERT INTO d (fid, pid, grp, fname, title) VALUES ({day}, '{pid}', 'result', "
                               f"'{pid}.pdf', 'approval')"))
        engine.dispose()
        yield url


def test_gbk_bytes_on_a_database_server_are_decoded_per_row(legacy_db: str) -> None:
    with connector(source(legacy_db)) as conn:
        got = collect(conn)
        counts = conn.count_completed(START, END)
    assert isinstance(got["P1"], Matter) and got["P1"].agency == "Dept One"
    assert got["P1"].completed_at == datetime(2025, 3, 1, 10, tzinfo=SHANGHAI)
    assert isinstance(got["P3"], InvalidMatter) and [p.code for p in got["P3"].findings] == ["Q-SOURCE-VALUE"]
    assert "field completed_at (column done)" in got["P3"].problems[0]
    assert isinstance(got["P2"], InvalidMatter)
    assert repr(GBK_AGENCY.encode("gbk")) in got["P2"].problems[0] and "column agency" in got["P2"].problems[0]
    assert sum(c.count for c in counts) == 2  # the poison date falls outside every count window
    with connector(source(legacy_db, fallback_encoding="gb18030")) as conn:
        got = collect(conn)
    assert isinstance(got["P2"], Matter) and got["P2"].agency == GBK_AGENCY


@pytest.mark.parametrize("explicit", [False, True])
def test_documents_of_another_matter_quarantine_the_matter(tmp_path: Path, explicit: bool) -> None:
    url = sqlite_db(tmp_path / "d.sqlite", GOOD, GOOD_DOCS)
    leaky = "SELECT fid, pid AS owner, grp, fname, title, body FROM d WHERE pid = :project_id OR fid = 2"
    extra: dict[str, Any] = {"documents_query": leaky.replace("pid AS owner", "pid")}
    if explicit:  # the key column named in document_columns, under a name of the query's own
        extra = {"documents_query": leaky, "document_columns": {
            "project_id": "owner", "key": "fid", "group": "grp", "file_name": "fname", "title": "title"}}
    with connector(source(url, **extra)) as conn:
        got = collect(conn)
    bad = got["P1"]
    assert isinstance(bad, InvalidMatter) and [p.code for p in bad.findings] == ["Q-DOC-FOREIGN"]
    column = "owner" if explicit else "pid"
    assert f"document 2 (b.pdf): column {column} holds 'P2', not this matter's 'P1'" in bad.problems[0]
    assert isinstance(got["P2"], Matter) and [d.file_name for d in got["P2"].documents] == ["b.pdf"]


def test_config_check_names_documents_and_steps_queries_not_bound_to_their_matter(tmp_path: Path) -> None:
    from flows.cli.config import check_sql

    url = sqlite_db(tmp_path / "d.sqlite", GOOD, GOOD_DOCS)
    problems, notes = check_sql(source(url), tmp_path)
    assert problems == [] and not any(n.startswith("warning") for n in notes)
    unbound = source(url, documents_query="SELECT fid, grp, fname, title, body FROM d",
                     steps_query="SELECT pid AS name FROM m", step_columns={"name": "name"})
    problems, notes = check_sql(unbound, tmp_path)
    assert {(p.where, p.message) for p in problems} == {
        ("source dept: documents_query", "does not use :project_id"),
        ("source dept: steps_query", "does not use :project_id")}
    assert any(n.startswith("warning: documents_query returns no pid column") for n in notes)


def test_an_id_the_database_refuses_in_the_documents_query_quarantines_that_matter_only() -> None:
    with fresh_database("postgresql") as url:
        engine = create_engine(url)
        with engine.begin() as c:  # the matters keep text ids, the attachments an integer key
            c.execute(text("CREATE TABLE m (pid VARCHAR(32), agency VARCHAR(100), applicant VARCHAR(100), "
                           "done TIMESTAMP, upd TIMESTAMP, status VARCHAR(2))"))
            c.execute(text("CREATE TABLE d (fid INTEGER, pid INTEGER, grp VARCHAR(8), fname VARCHAR(100), "
                           "title VARCHAR(100), body BYTEA)"))
            for pid, day in (("7", 1), ("P8", 2)):
                c.execute(text(f"INSERT INTO m VALUES ('{pid}', 'Dept', 'ACME', '2025-03-0{day} 10:00', "
                               f"'2025-03-0{day} 10:00', 'BJ')"))
            c.execute(text("INSERT INTO d VALUES (1, 7, 'result', 'a.pdf', 'approval', '\\x25504446')"))
        engine.dispose()
        with connector(source(url)) as conn:
            got = collect(conn)
    assert isinstance(got["7"], Matter) and [d.file_name for d in got["7"].documents] == ["a.pdf"]
    bad = got["P8"]
    assert isinstance(bad, InvalidMatter) and [p.code for p in bad.findings] == ["Q-SOURCE-VALUE"]
    assert "documents or steps cannot be read" in bad.problems[0] and "P8" in bad.problems[0]
