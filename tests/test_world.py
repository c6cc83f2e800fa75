"""The demo world: deterministic for a seed, a configuration guidang accepts, enough variety to show.

Two worlds are built from one seed in two folders and compared file by file (digests), database by
database (row dumps) and cell by cell (the retention workbook, whose XLSX container carries zip
timestamps). The written guidang.yaml is then loaded and used, unchanged, to read both self-built
systems: that is the "no Python per system" promise.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from connectors.sources.sql import SqlConnector
from guidang_demo.catalogue import DEMO_CATALOGUE, DEMO_FONDS
from guidang_demo.selfbuilt import sjjc_source, tzxm_source
from guidang_demo.selfbuilt_data import write_tzxm
from guidang_demo.world import RETENTION_HEADERS, build_world
from schemas.config import FsRepository, SqlSource, UnifiedSource, load_settings
from schemas.findings import GuidangError
from schemas.model import InvalidMatter, Matter

Worlds = tuple[Path, Path, dict[str, Any], dict[str, Any]]
SINCE = datetime.fromisoformat("2000-01-01T00:00:00+08:00")
UNTIL = datetime.fromisoformat("2100-01-01T00:00:00+08:00")


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Worlds:
    a, b = tmp_path_factory.mktemp("world-a"), tmp_path_factory.mktemp("world-b")
    return a, b, build_world(a), build_world(b)


def digests(root: Path) -> dict[str, str]:
    """Every file except the SQLite databases and the workbook, which are compared by content."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in (".sqlite", ".xlsx") and p.name != "world.json"
    }


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def sheet(path: Path) -> list[tuple[Any, ...]]:
    wb = load_workbook(path, read_only=True)
    try:
        return [tuple(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()


def without_paths(summary: dict[str, Any], root: Path) -> Any:
    return json.loads(json.dumps(summary, ensure_ascii=False, default=str).replace(str(root), "<world>"))


def test_two_worlds_from_one_seed_are_identical(worlds: Worlds) -> None:
    a, b, sa, sb = worlds
    files_a, files_b = digests(a), digests(b)
    assert files_a == files_b
    assert sum(1 for f in files_a if f.endswith(".pdf")) > 500  # the documents are among them
    for db in ("sources/tzxm.sqlite", "sources/sjjc.sqlite"):
        dump_a = dump(a / db)
        assert dump_a == dump(b / db)
        assert all(dump_a.values())
    assert sheet(a / "retention.xlsx") == sheet(b / "retention.xlsx")
    assert without_paths(sa, a) == without_paths(sb, b)
    assert sa["sources"]["tzxm"]["project_ids"] == sb["sources"]["tzxm"]["project_ids"]


def test_another_seed_gives_other_data(tmp_path: Path, worlds: Worlds) -> None:
    a, _, sa, _ = worlds
    other = write_tzxm(tmp_path / "tzxm.sqlite", seed=2027)
    assert other["project_ids"] != sa["sources"]["tzxm"]["project_ids"]
    blobs = {r[-1] for rows in dump(a / "sources/tzxm.sqlite").values() for r in rows if isinstance(r[-1], bytes)}
    assert blobs.isdisjoint(r[-1] for r in dump(tmp_path / "tzxm.sqlite")["XM_ATTACHMENT"])


def test_counts_meet_the_minimums(worlds: Worlds) -> None:
    a, _, summary, _ = worlds
    unified = json.loads((a / "sources" / "unified" / "matters.json").read_text(encoding="utf-8"))
    completed = [m for m in unified if m.get("FINISHTIME")]
    assert summary["by_source"]["unified"] == len(completed) == 180
    assert summary["matters"] == sum(summary["by_source"].values()) >= 300
    assert len(summary["service_codes"]) >= 8
    assert len(summary["agencies"]) >= 4
    assert len(summary["matter_types"]) >= 3
    assert summary["by_source"]["tzxm"] >= 50 and summary["by_source"]["sjjc"] >= 70
    kinds = {d["kind"] for s in ("tzxm", "sjjc") for d in summary["defects"][s]}
    assert kinds == {"null-blob", "broken-pdf", "missing-file", "dates-out-of-order"}


def test_the_written_config_loads_and_drives_both_self_built_systems(
    worlds: Worlds, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _, summary, _ = worlds
    monkeypatch.delenv("GUIDANG_UNIFIED_URL", raising=False)
    settings = load_settings(a / "guidang.yaml")
    assert [(f.code, f.name) for f in settings.fonds] == [(DEMO_FONDS, "杭州市西湖区数据资源管理局")]
    assert settings.resolve_url(settings.ledger_url) == f"sqlite:///{a / 'ledger.sqlite'}"
    assert isinstance(settings.repository, FsRepository) and settings.repository.path == "archive"
    assert settings.retention.table == "retention.xlsx" and settings.resolve("retention.xlsx").is_file()
    assert settings.staging == "staging"
    unified = settings.source("unified")
    assert isinstance(unified, UnifiedSource) and unified.base_url == "http://127.0.0.1:8765"
    monkeypatch.setenv("GUIDANG_UNIFIED_URL", "http://127.0.0.1:40123")  # what `guidang demo` does
    assert load_settings(a / "guidang.yaml").source("unified").base_url == "http://127.0.0.1:40123"

    # the file says exactly what selfbuilt's entries say
    assert settings.source("tzxm") == SqlSource.model_validate(tzxm_source("sqlite:///sources/tzxm.sqlite"))
    assert settings.source("sjjc") == SqlSource.model_validate(
        sjjc_source("sqlite:///sources/sjjc.sqlite", "sources/sjjc_files"))
    for name in ("tzxm", "sjjc"):
        source = settings.source(name)
        assert isinstance(source, SqlSource)
        with SqlConnector(source, base_dir=settings.base_dir) as conn:
            got = list(conn.completed_between(SINCE, UNTIL))
            assert sorted(m.project_id for m in got) == sorted(summary["sources"][name]["project_ids"])
            first = next(m for m in got if isinstance(m, Matter))
            assert b"".join(conn.open_document(first.documents[0])).startswith(b"%PDF-")
        invalid = [m.project_id for m in got if isinstance(m, InvalidMatter)]
        expected = [d["project_id"] for d in summary["defects"][name] if d["kind"] == "dates-out-of-order"]
        assert invalid == expected


def test_retention_workbook(worlds: Worlds) -> None:
    a = worlds[0]
    header, *rows = sheet(a / "retention.xlsx")
    assert header == RETENTION_HEADERS
    records = [dict(zip(header, r, strict=True)) for r in rows]
    with_rule = [e for e in DEMO_CATALOGUE if e.retention != ""]
    assert len(records) == len(with_rule) + 1
    labels = {"Y": "永久", "D30": "30年", "D10": "10年"}
    whole = {r["事项编码"]: r for r in records if r["材料类别"] == "全部"}
    for e in with_rule:
        r = whole[e.service_code]
        assert (r["事项名称"], r["实施机构"], r["机构问题代码"], r["门类代码"]) == (
            e.service_name, e.agency, e.org_code, "WS")
        assert r["事项类型"].split()[0] == e.matter_type
        if e.retention == "不归档":
            assert (r["归档范围"], r["保管期限"]) == ("不归档", None)
        else:
            assert (r["归档范围"], r["保管期限"]) == ("归档", labels[e.retention])
        assert r["生效日期"].date() == date(2020, 1, 1) and r["失效日期"] is None and r["依据"]
    group_rows = [r for r in records if r["材料类别"] != "全部"]
    assert [(r["事项编码"], r["材料类别"], r["归档范围"], r["保管期限"]) for r in group_rows] == [
        ("330106-XK-0001", "过程", "归档", "10年")]
    assert not any(r["事项编码"] == "330106-QT-0001" for r in records)  # no rule on purpose


def test_an_existing_world_is_reused_untouched(worlds: Worlds) -> None:
    a, _, first, _ = worlds
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in a.rglob("*") if p.is_file()}
    again = build_world(a, seed=99)
    assert again["reused"] is True and first["reused"] is False
    assert again["matters"] == first["matters"] and again["seed"] == 2026
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in a.rglob("*") if p.is_file()} == before


def test_a_folder_that_is_not_a_world_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "tzxm.sqlite").write_bytes(b"")
    with pytest.raises(GuidangError, match="not empty"):
        build_world(tmp_path)
    assert not (tmp_path / "guidang.yaml").exists()


def test_a_killed_build_leaves_nothing_the_next_build_trips_over(tmp_path: Path) -> None:
    scratch = tmp_path / ".world.building"  # what a build killed half-way leaves
    (scratch / "sources").mkdir(parents=True)
    (scratch / "sources" / "tzxm.sqlite").write_bytes(b"half")
    summary = build_world(tmp_path / "world", counts={"unified": 12, "tzxm": 4, "sjjc": 4})
    assert not summary["reused"] and not scratch.exists()
    assert (tmp_path / "world" / "guidang.yaml").is_file()
    assert str(scratch) not in (tmp_path / "world" / "world.json").read_text(encoding="utf-8")
