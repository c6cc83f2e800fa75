"""Sources count and list their own completed matters (办结), for 应归尽归 reconciliation.

Against the real unified-system simulator over HTTP and against the demo self-built systems on
SQLite, PostgreSQL and MariaDB. Expected figures are read from the data itself (matters.json, the
tables through the sqlite3 module), never through the connector, so a wrong window bound, a lost
invalid record or a time read in the wrong zone shows as a difference.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from typer.testing import CliRunner

from connectors.sources.sql import SqlConnector
from connectors.sources.sql_queries import check_config
from connectors.sources.unified import UnifiedConnector
from flows.cli import app
from guidang_demo.selfbuilt import sjjc_source, tzxm_source
from guidang_demo.selfbuilt_data import write_sjjc, write_tzxm
from guidang_demo.unified_simulator import Fault, FaultPlan, UnifiedSimulator, write_unified_dataset
from schemas.completion import CompletedCount, CompletedItem, count_items
from schemas.config import SqlSource, UnifiedSource
from schemas.errors import SourceUnavailable
from schemas.findings import GuidangError
from schemas.model import InvalidMatter, Matter
from tests.dbservers import fresh_database
from tests.selfbuilt_support import copy_system
from tests.world_support import simulator

SHANGHAI = ZoneInfo("Asia/Shanghai")
ALL_START = datetime(2020, 1, 1, tzinfo=SHANGHAI)
ALL_END = datetime(2030, 1, 1, tzinfo=SHANGHAI)


def day(d: str) -> tuple[datetime, datetime]:
    """The Asia/Shanghai calendar day `d` as [start, end)."""
    start = datetime.fromisoformat(d).replace(tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def tally(pairs: list[tuple[str, str]]) -> list[CompletedCount]:
    return [CompletedCount(a, t, n) for (a, t), n in sorted(Counter(pairs).items())]


# ============================================================================ unified system (HTTP)


@pytest.fixture(scope="module")
def unified_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    d = tmp_path_factory.mktemp("unified-counts")
    return d, write_unified_dataset(d)


def _records(d: Path) -> list[dict[str, Any]]:
    return json.loads((d / "matters.json").read_text(encoding="utf-8"))


def _expected(records: list[dict[str, Any]], start: datetime, end: datetime) -> list[CompletedCount]:
    """What the dataset holds: completed records with FINISHTIME in [start, end), per DEPTNAME/SERVICETYPE."""
    return tally([(r["DEPTNAME"], r["SERVICETYPE"]) for r in records
                  if r.get("FINISHTIME") and start <= datetime.fromisoformat(r["FINISHTIME"]) < end])


def _unified(url: str, **kw: object) -> UnifiedConnector:
    config = {"name": "unified", "kind": "unified", "base_url": url, "page_size": 25, "timeout_seconds": 2,
              "retries": 3, "backoff_seconds": 0.01} | kw
    return UnifiedConnector(UnifiedSource.model_validate(config))


@pytest.fixture
def served(unified_data: tuple[Path, dict[str, Any]]) -> Iterator[tuple[UnifiedSimulator, UnifiedConnector]]:
    sim = UnifiedSimulator(unified_data[0])
    conn = _unified(sim.start())
    try:
        yield sim, conn
    finally:
        conn.close()
        sim.stop()


def test_unified_counts_every_completed_matter_per_agency_and_type_invalid_ones_included(
    served: tuple[UnifiedSimulator, UnifiedConnector], unified_data: tuple[Path, dict[str, Any]]
) -> None:
    sim, conn = served
    d, summary = unified_data
    counts = conn.count_completed(ALL_START, ALL_END)
    assert counts == _expected(_records(d), ALL_START, ALL_END)
    assert sum(c.count for c in counts) == summary["completed"] == 180  # the one in progress is not counted
    # the two records the connector refuses are counted at the source, under what they say
    invalid = [m for m in conn.completed_between(ALL_START, ALL_END) if isinstance(m, InvalidMatter)]
    assert len(invalid) == 2
    assert CompletedCount("西湖区市场监督管理局", "99", 1) in counts  # SERVICETYPE 99: unknown type
    missing_name = sim.matter(summary["defects"]["missing_field"][0])
    listed = {i.project_id: i for i in conn.list_completed(ALL_START, ALL_END)}
    assert {m.project_id for m in invalid} <= set(listed)
    assert listed[missing_name["PROJID"]].agency == missing_name["DEPTNAME"]
    # one day at a time, the days add up to the whole
    days = [day(f"2026-11-{n}") for n in range(19, 28)]
    per_day = [conn.count_completed(s, e) for s, e in days]
    for (s, e), got in zip(days, per_day, strict=True):
        assert got == _expected(_records(d), s, e)
    assert sum(c.count for got in per_day for c in got) == 180
    assert sum(1 for got in per_day if got) >= 5  # the data spans several days, so the windows really cut


def test_unified_listing_equals_counting_page_by_page(
    served: tuple[UnifiedSimulator, UnifiedConnector], unified_data: tuple[Path, dict[str, Any]]
) -> None:
    sim, conn = served
    start, end = day("2026-11-23")
    items = list(conn.list_completed(start, end))
    assert count_items(items) == conn.count_completed(start, end)
    expected = sorted((datetime.fromisoformat(r["FINISHTIME"]), r["PROJID"]) for r in _records(unified_data[0])
                      if r.get("FINISHTIME") and start <= datetime.fromisoformat(r["FINISHTIME"]) < end)
    assert [(i.completed_at, i.project_id) for i in items] == expected
    assert len(items) > 25 and sim.requests["completed"] == -(-len(items) // 25)  # paged, no page twice
    one = sim.matter(items[0].project_id)
    assert items[0] == CompletedItem(
        project_id=one["PROJID"], agency=one["DEPTNAME"], matter_type=one["SERVICETYPE"],
        service_code=one["SERVICECODE"], completed_at=datetime.fromisoformat(one["FINISHTIME"]),
        updated_at=datetime.fromisoformat(one["UPDATETIME"]))
    assert all(i.completed_at.utcoffset() == timedelta(hours=8) for i in items)


def test_unified_window_is_start_inclusive_end_exclusive_and_converted_from_any_zone(
    served: tuple[UnifiedSimulator, UnifiedConnector], unified_data: tuple[Path, dict[str, Any]]
) -> None:
    sim, conn = served
    ids = [r["PROJID"] for r in _records(unified_data[0]) if r.get("FINISHTIME")]
    at_start, at_end, half_past, naive = ids[3], ids[4], ids[5], ids[6]
    start, end = day("2026-11-30")
    sim.update_matter(at_start, FINISHTIME="2026-11-30T00:00:00+08:00")
    sim.update_matter(at_end, FINISHTIME="2026-12-01T00:00:00+08:00")
    sim.update_matter(half_past, FINISHTIME="2026-11-30T00:30:00+08:00")  # 16:30 UTC on the 29th
    sim.update_matter(naive, FINISHTIME="2026-11-30T23:59:59")  # no offset: the platform's local time
    listed = [i.project_id for i in conn.list_completed(start, end)]
    assert sorted(listed) == sorted([at_start, half_past, naive])
    assert [i.project_id for i in conn.list_completed(*day("2026-12-01"))] == [at_end]
    assert half_past not in {i.project_id for i in conn.list_completed(*day("2026-11-29"))}
    # the same Shanghai day asked for in UTC gives the same matters; the UTC day of the 29th holds 00:30
    utc = [i.project_id for i in conn.list_completed(start.astimezone(UTC), end.astimezone(UTC))]
    assert utc == listed
    utc_29 = {i.project_id for i in conn.list_completed(datetime(2026, 11, 29, tzinfo=UTC),
                                                       datetime(2026, 11, 30, tzinfo=UTC))}
    assert half_past in utc_29 and at_start in utc_29 and naive not in utc_29
    assert sum(c.count for c in conn.count_completed(start, end)) == 3
    got = {i.project_id: i for i in conn.list_completed(start, end)}
    assert got[naive].completed_at == datetime(2026, 11, 30, 23, 59, 59, tzinfo=SHANGHAI)


def test_unified_retries_a_5xx_and_gives_up_when_the_source_stays_down(
    unified_data: tuple[Path, dict[str, Any]]
) -> None:
    d = unified_data[0]
    faults = FaultPlan(faults=(Fault("status", ("statistics", "completed"), first=2, status=503),
                               Fault("status", ("completed",), every=3, status=500, limit=2)))
    sim = UnifiedSimulator(d, faults=faults)
    try:
        with _unified(sim.start()) as conn:
            assert conn.count_completed(ALL_START, ALL_END) == _expected(_records(d), ALL_START, ALL_END)
            assert sim.requests["statistics"] == 3 and sim.faults_served["status"] == 2
            items = list(conn.list_completed(ALL_START, ALL_END))
            assert len(items) == len({i.project_id for i in items}) == 180
            assert sim.faults_served["status"] == 6  # the listing's first two, and two every third
            assert sim.requests["completed"] == 8 + 4  # eight pages, each failed request asked again
    finally:
        sim.stop()
    with UnifiedSimulator(d, faults=FaultPlan.down(502)) as url, _unified(url, retries=2) as conn:
        with pytest.raises(SourceUnavailable, match=r"statistics/completed failed after 3 attempts: HTTP 502"):
            conn.count_completed(ALL_START, ALL_END)
        with pytest.raises(SourceUnavailable, match=r"/completed failed after 3 attempts"):
            list(conn.list_completed(ALL_START, ALL_END))


def test_unified_needs_the_bearer_token_for_its_counts(
    unified_data: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with UnifiedSimulator(unified_data[0], token="s3cret") as url:
        with _unified(url) as conn, pytest.raises(SourceUnavailable, match="HTTP 401"):
            conn.count_completed(ALL_START, ALL_END)
        monkeypatch.setenv("GUIDANG_TEST_TOKEN", "s3cret")
        with _unified(url, token_env="GUIDANG_TEST_TOKEN") as conn:
            assert sum(c.count for c in conn.count_completed(ALL_START, ALL_END)) == 180


def test_a_matter_added_behind_the_watermark_is_counted_listed_and_archivable(
    served: tuple[UnifiedSimulator, UnifiedConnector], unified_data: tuple[Path, dict[str, Any]]
) -> None:
    sim, conn = served
    summary = unified_data[1]
    clean = next(r["PROJID"] for r in _records(unified_data[0])
                 if r.get("FINISHTIME") and r["PROJID"] not in {p for v in summary["defects"].values() for p in v})
    before = conn.count_completed(*day("2026-11-21"))
    late = sim.add_matter(clean, finished_at=datetime(2026, 11, 21, 10, 0, tzinfo=SHANGHAI))
    record = sim.matter(late)
    assert late != clean and record["FINISHTIME"] == "2026-11-21T10:00:00+08:00"
    assert datetime.fromisoformat(record["UPDATETIME"]) < datetime(2026, 11, 22, tzinfo=SHANGHAI)  # in the past
    after = conn.count_completed(*day("2026-11-21"))
    key = CompletedCount(record["DEPTNAME"], record["SERVICETYPE"], 0)
    was = next((c.count for c in before if (c.agency, c.matter_type) == (key.agency, key.matter_type)), 0)
    assert CompletedCount(key.agency, key.matter_type, was + 1) in after
    assert sum(c.count for c in after) == sum(c.count for c in before) + 1
    assert late in {i.project_id for i in conn.list_completed(*day("2026-11-21"))}
    # a night re-reading that old window finds a whole, valid matter with its documents
    updated = datetime.fromisoformat(record["UPDATETIME"])
    got = [m for m in conn.completed_between(updated - timedelta(seconds=1), updated) if m.project_id == late]
    assert len(got) == 1 and isinstance(got[0], Matter)
    original = conn.fetch_matter(clean)
    assert isinstance(original, Matter)
    assert [hashlib.sha256(b"".join(conn.open_document(doc))).hexdigest() for doc in got[0].documents] == [
        doc.source_sha256 for doc in original.documents]
    assert {doc.locator for doc in got[0].documents}.isdisjoint({doc.locator for doc in original.documents})
    # an explicit UPDATETIME and PROJID are kept; a PROJID already there is refused
    sim.add_matter(clean, finished_at=datetime(2026, 11, 20, 9, 0), updated_at=datetime(2026, 11, 20, 9, 30),
                   projid="LATE-1")
    assert sim.matter("LATE-1")["UPDATETIME"] == "2026-11-20T09:30:00+08:00"
    with pytest.raises(ValueError, match="LATE-1"):
        sim.add_matter(clean, finished_at=datetime(2026, 11, 20, 9, 0), projid="LATE-1")


def test_unified_listing_restarts_when_a_matter_is_completed_while_it_pages(
    served: tuple[UnifiedSimulator, UnifiedConnector], unified_data: tuple[Path, dict[str, Any]]
) -> None:
    sim, conn = served
    listing = conn.list_completed(ALL_START, ALL_END)
    first = next(listing)  # page 1 read
    earliest = datetime(2026, 11, 1, 8, 0, tzinfo=SHANGHAI)  # sorts before everything already served
    late = sim.add_matter(first.project_id, finished_at=earliest)
    rest = list(listing)
    got = [first.project_id, *(i.project_id for i in rest)]
    assert len(got) == len(set(got)) == 181 and late in got


# ============================================================================ self-built systems (SQL)


@pytest.fixture(scope="module")
def selfbuilt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("selfbuilt-counts")
    tzxm = write_tzxm(base / "sources" / "tzxm.sqlite", seed=11)
    sjjc = write_sjjc(base / "sources" / "sjjc.sqlite", base / "sources" / "sjjc_files", seed=11)
    return {"base": base, "tzxm": tzxm, "sjjc": sjjc}


@pytest.fixture
def writable(selfbuilt: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of the two databases a test may change."""
    for name in ("tzxm.sqlite", "sjjc.sqlite"):
        (tmp_path / "sources").mkdir(exist_ok=True)
        shutil.copy(selfbuilt["base"] / "sources" / name, tmp_path / "sources" / name)
    return tmp_path


def sql(base: Path, config: dict[str, Any]) -> SqlConnector:
    return SqlConnector(SqlSource.model_validate(config), base_dir=base, backoff_seconds=0.01)


def query(db: Path, text: str, *params: object) -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(text, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def tzxm_rows(base: Path) -> list[sqlite3.Row]:
    return query(base / "sources" / "tzxm.sqlite",
                 "SELECT SPBH, SPBM, SXLX, SXBM, BJSJ, GXSJ FROM XM_APPROVAL WHERE BLZT = 'BJ'")


def sjjc_rows(base: Path) -> list[sqlite3.Row]:
    return query(base / "sources" / "sjjc.sqlite",
                 "SELECT r.record_no, t.dept_name, t.item_code, r.completed_at, r.modified_at FROM inspection_record r"
                 " JOIN inspection_task t ON t.task_no = r.task_no WHERE r.status = 'closed'")


def _in(text: str, start: datetime, end: datetime) -> bool:
    return start <= _local(text) < end


def test_sql_counts_equal_the_tables_per_agency_and_type_for_a_window(selfbuilt: dict[str, Any]) -> None:
    base = selfbuilt["base"]
    days = [day(f"2026-11-{n}") for n in range(19, 28)]
    with sql(base, tzxm_source()) as conn:
        assert conn.count_completed(ALL_START, ALL_END) == tally([(r["SPBM"], r["SXLX"]) for r in tzxm_rows(base)])
        for s, e in days:
            assert conn.count_completed(s, e) == tally(
                [(r["SPBM"], r["SXLX"]) for r in tzxm_rows(base) if _in(r["BJSJ"], s, e)])
        assert sum(c.count for c in conn.count_completed(ALL_START, ALL_END)) == selfbuilt["tzxm"]["matters"]
    with sql(base, sjjc_source()) as conn:
        counts = conn.count_completed(ALL_START, ALL_END)
        assert counts == tally([(r["dept_name"], "06") for r in sjjc_rows(base)])  # the constant 事项类型
        for s, e in days:
            assert conn.count_completed(s, e) == tally(
                [(r["dept_name"], "06") for r in sjjc_rows(base) if _in(r["completed_at"], s, e)])
        # the record the connector refuses (办结 before 认领) is counted all the same
        disordered = next(d["project_id"] for d in selfbuilt["sjjc"]["defects"] if d["kind"] == "dates-out-of-order")
        assert isinstance(conn.fetch_matter(disordered), InvalidMatter)
        assert sum(c.count for c in counts) == selfbuilt["sjjc"]["matters"]  # the open record is not
        assert disordered in {i.project_id for i in conn.list_completed(ALL_START, ALL_END)}


def test_sql_listing_equals_counting_with_the_rows_fields(selfbuilt: dict[str, Any]) -> None:
    base = selfbuilt["base"]
    start, end = day("2026-11-23")
    with sql(base, tzxm_source()) as conn:
        items = list(conn.list_completed(start, end))
        assert count_items(items) == conn.count_completed(start, end)
        expected = sorted(((_local(r["BJSJ"]), r["SPBH"]), r) for r in tzxm_rows(base) if _in(r["BJSJ"], start, end))
        assert [i.project_id for i in items] == [r["SPBH"] for _, r in expected] and items
        assert [(i.agency, i.matter_type, i.service_code, i.completed_at, i.updated_at) for i in items] == [
            (r["SPBM"], r["SXLX"], r["SXBM"], _local(r["BJSJ"]), _local(r["GXSJ"])) for _, r in expected]
    with sql(base, sjjc_source()) as conn:
        items = list(conn.list_completed(ALL_START, ALL_END))
        assert count_items(items) == conn.count_completed(ALL_START, ALL_END)
        assert {i.matter_type for i in items} == {"06"}
        assert sorted(i.project_id for i in items) == sorted(selfbuilt["sjjc"]["project_ids"])


def test_sql_window_is_start_inclusive_end_exclusive_in_the_sources_zone(writable: Path) -> None:
    db = writable / "sources" / "tzxm.sqlite"
    ids = [r["SPBH"] for r in tzxm_rows(writable)]
    at_start, at_end, half_past = ids[0], ids[1], ids[2]
    for pid, when in ((at_start, "2026-11-30 00:00:00.000000"), (at_end, "2026-12-01 00:00:00.000000"),
                      (half_past, "2026-11-30 00:30:00.000000")):
        query(db, "UPDATE XM_APPROVAL SET BJSJ = ? WHERE SPBH = ?", when, pid)
    start, end = day("2026-11-30")
    with sql(writable, tzxm_source()) as conn:
        assert [i.project_id for i in conn.list_completed(start, end)] == [at_start, half_past]
        assert [i.project_id for i in conn.list_completed(*day("2026-12-01"))] == [at_end]
        assert sum(c.count for c in conn.count_completed(start, end)) == 2
        # the bounds given in UTC are converted to the database's local time (Asia/Shanghai)
        assert [i.project_id for i in conn.list_completed(start.astimezone(UTC), end.astimezone(UTC))] == [
            at_start, half_past]
        utc_29 = [i.project_id for i in conn.list_completed(datetime(2026, 11, 29, tzinfo=UTC),
                                                           datetime(2026, 11, 30, tzinfo=UTC))]
        assert utc_29 == [at_start, half_past]  # 00:00 and 00:30 in Shanghai are the UTC 29th
        half = next(i for i in conn.list_completed(start, end) if i.project_id == half_past)
        assert half.completed_at == datetime(2026, 11, 30, 0, 30, tzinfo=SHANGHAI)
    # a database keeping UTC: the same naive 16:30 on the 29th is 00:30 on the 30th in Shanghai
    query(db, "UPDATE XM_APPROVAL SET BJSJ = ? WHERE SPBH = ?", "2026-11-29 16:30:00.000000", half_past)
    with sql(writable, tzxm_source() | {"timezone": "UTC"}) as conn:
        got = {i.project_id: i for i in conn.list_completed(start, end)}
        assert half_past in got and got[half_past].completed_at == datetime(2026, 11, 29, 16, 30, tzinfo=UTC)
    with sql(writable, tzxm_source()) as conn:
        assert half_past not in {i.project_id for i in conn.list_completed(start, end)}


def test_a_source_without_count_query_says_so_and_cannot_list_without_list_query(selfbuilt: dict[str, Any]) -> None:
    config = {k: v for k, v in tzxm_source().items()
              if k not in ("count_query", "count_columns", "list_query", "list_columns")}
    with sql(selfbuilt["base"], config) as conn:
        with pytest.raises(GuidangError, match=r"source tzxm: count_query is not configured") as info:
            conn.count_completed(ALL_START, ALL_END)
        assert info.value.findings[0].where == "source tzxm: count_query"
        assert conn.list_completed(ALL_START, ALL_END) is None
    only_count = {k: v for k, v in tzxm_source().items() if k not in ("list_query", "list_columns")}
    with sql(selfbuilt["base"], only_count) as conn:
        assert conn.list_completed(ALL_START, ALL_END) is None
        assert sum(c.count for c in conn.count_completed(ALL_START, ALL_END)) == 60


def test_count_and_list_mappings_are_checked_before_any_query(selfbuilt: dict[str, Any]) -> None:
    bad = tzxm_source() | {
        "count_columns": {"agency": "SPBM", "count": "BJS", "region": "XZQHDM"},  # no matter_type, unknown key
        "list_columns": {"agency": "SPBM", "matter_type": "SXLX"},  # no project_id, no completed_at
    }
    with pytest.raises(GuidangError) as info:
        check_config(SqlSource.model_validate(bad))
    wheres = {f.where: f.message for f in info.value.findings}
    assert "unknown field 'region'" in wheres["source tzxm: count_columns.region"]
    assert "constant" in wheres["source tzxm: count_columns.matter_type"]
    assert "source tzxm: list_columns.project_id" in wheres and "source tzxm: list_columns.completed_at" in wheres
    orphan = {k: v for k, v in tzxm_source().items() if k != "count_query"}
    with pytest.raises(GuidangError, match=r"count_columns: given, but count_query is not"):
        check_config(SqlSource.model_validate(orphan))
    # a matter type that is a constant of the source satisfies the mapping (sjjc)
    check_config(SqlSource.model_validate(sjjc_source()))


def test_a_count_query_without_its_bounds_or_with_an_unreadable_count_is_named(selfbuilt: dict[str, Any]) -> None:
    no_end = tzxm_source()
    no_end["count_query"] = no_end["count_query"].replace(" AND a.BJSJ < :end", "")
    with sql(selfbuilt["base"], no_end) as conn, pytest.raises(GuidangError, match="source tzxm: count_query must"):
        conn.count_completed(ALL_START, ALL_END)
    wrong = tzxm_source()
    wrong["count_query"] = ("SELECT SPBM, SXLX, 'many' AS BJS FROM XM_APPROVAL\n"
                            " WHERE BJSJ >= :start AND BJSJ < :end GROUP BY SPBM, SXLX")
    with sql(selfbuilt["base"], wrong) as conn, pytest.raises(
            GuidangError, match=r"source tzxm: count_query row 1: field count \(column BJS\): not a count: 'many'"):
        conn.count_completed(ALL_START, ALL_END)
    misspelt = tzxm_source()
    misspelt["count_columns"] = {**misspelt["count_columns"], "count": "BJS_TYPO"}
    with sql(selfbuilt["base"], misspelt) as conn, pytest.raises(GuidangError, match=r"'BJS_TYPO'"):
        conn.count_completed(ALL_START, ALL_END)


def test_an_unreachable_database_is_source_unavailable_after_retries(selfbuilt: dict[str, Any]) -> None:
    down = tzxm_source("postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    with sql(selfbuilt["base"], down) as conn:
        with pytest.raises(SourceUnavailable, match=r"unavailable after 3 attempts \(count_query\)"):
            conn.count_completed(ALL_START, ALL_END)
        with pytest.raises(SourceUnavailable, match=r"\(list_query\)"):
            conn.list_completed(ALL_START, ALL_END)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def server_db(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_database(request.param) as url:
        yield url


def test_the_same_counts_and_lists_on_a_database_server(server_db: str, selfbuilt: dict[str, Any]) -> None:
    base = selfbuilt["base"]
    copy_system("tzxm", base / "sources" / "tzxm.sqlite", server_db)
    copy_system("sjjc", base / "sources" / "sjjc.sqlite", server_db)
    windows = [(ALL_START, ALL_END), day("2026-11-22"), day("2026-11-24")]
    for make in (tzxm_source, sjjc_source):
        with sql(base, make()) as lite, sql(base, make(server_db)) as server:
            for start, end in windows:
                counted = server.count_completed(start, end)
                assert counted == lite.count_completed(start, end)
                listed = list(server.list_completed(start.astimezone(UTC), end.astimezone(UTC)))
                assert listed == list(lite.list_completed(start, end))
                assert count_items(listed) == counted
            assert sum(c.count for c in server.count_completed(ALL_START, ALL_END)) == selfbuilt[
                make().get("name")]["matters"]


# ============================================================================ guidang config check


def _world_config(world: Path, source: str, **changes: Any) -> Path:
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    entry = next(s for s in config["sources"] if s["name"] == source)
    entry.update(changes)
    path = world / "guidang-test.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_config_check_prepares_the_count_and_list_queries(small_world: Path) -> None:
    with simulator(small_world):
        result = CliRunner().invoke(app, ["config", "check", str(small_world / "guidang.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    sources = json.loads(result.output)["sources"]
    assert "count_query returns 3 column(s)" in sources["tzxm"]["notes"]
    assert "list_query returns 5 column(s)" in sources["sjjc"]["notes"]
    assert any("counts its completed matters" in n for n in sources["unified"]["notes"])

    config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    tzxm = next(s for s in config["sources"] if s["name"] == "tzxm")
    path = _world_config(
        small_world, "tzxm",
        count_columns={**tzxm["count_columns"], "count": "NO_SUCH_COUNT"},
        list_query=tzxm["list_query"].replace(":start", "'2026-01-01'"),
    )
    with simulator(small_world):
        result = CliRunner().invoke(app, ["config", "check", str(path), "--json"])
    assert result.exit_code == 2, result.output
    problems = {p["where"]: p["message"] for p in json.loads(result.output)["sources"]["tzxm"]["problems"]}
    assert "NO_SUCH_COUNT" in problems["source tzxm: count_columns"]
    assert "does not use :start" in problems["source tzxm: list_query"]

    sjjc = next(s for s in config["sources"] if s["name"] == "sjjc")
    path = _world_config(small_world, "sjjc", count_query=sjjc["count_query"].replace("inspection_task", "no_such"))
    with simulator(small_world):
        result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert "count_query: does not prepare" in result.output and "no_such" in result.output
