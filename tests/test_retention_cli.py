"""`guidang retention ...` through the real command line (typer's CliRunner on flows.cli.app).

Real files throughout: workbooks written with openpyxl, a SQLite ledger, catalogue CSVs; the end-to-end
test runs one night over the demo world (unified simulator over HTTP on 127.0.0.1) and compares what
`explain` says decided each archived matter with what the package's 元数据.xml records.
"""

from __future__ import annotations

import csv
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from flows.cli import app
from ledger.models import MatterRecord, MatterState, QuarantineEntry, RetentionVersion
from ledger.store import Ledger
from night.retention_book import load_book
from retention import explain_matter, write_table_xlsx
from schemas.config import load_settings
from schemas.metadata import read_metadata
from schemas.model import Matter
from schemas.xmlio import parse_xml

AGENCY_A = "西湖区市场监督管理局"
AGENCY_B = "西湖区生态环境分局"

GOOD_ROWS: list[dict[str, Any]] = [
    {"事项编码": "330106-XK-0001", "事项名称": "食品经营许可", "事项类型": "01", "实施机构": AGENCY_A,
     "材料类别": "全部", "归档范围": "归档", "保管期限": "30年", "机构问题代码": "SJ", "依据": "规范"},
    {"事项编码": "330106-XK-0001", "事项名称": "食品经营许可", "事项类型": "01", "实施机构": AGENCY_A,
     "材料类别": "过程", "归档范围": "归档", "保管期限": "10年", "机构问题代码": "SJ"},
    {"事项类型": "01", "材料类别": "全部", "归档范围": "归档", "保管期限": "10年", "机构问题代码": "XK"},
    {"事项类型": "06", "实施机构": AGENCY_B, "材料类别": "全部", "归档范围": "归档", "保管期限": "永久",
     "机构问题代码": "JC"},
]


def _rows(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """GOOD_ROWS with some rows changed: row2={...} changes sheet row 2."""
    rows = [dict(r) for r in GOOD_ROWS]
    for key, change in changes.items():
        rows[int(key[3:]) - 2].update(change)
    return rows


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["retention", *args])


def _json(result: Any) -> Any:
    assert result.output.strip(), result.output
    return json.loads(result.output)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.xlsx"
    write_table_xlsx(path, GOOD_ROWS)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.xlsx"
    write_table_xlsx(path, _rows(row3={"保管期限": "20年"}, row4={"归档范围": "也许"}))
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "guidang.yaml"
    path.write_text(
        "fonds:\n  - code: Z109\n    name: 测试全宗\n"
        "ledger_url: sqlite:///ledger.sqlite\n"
        "repository:\n  kind: fs\n  path: archive\n"
        "sources:\n  - name: unified\n    kind: unified\n    base_url: http://127.0.0.1:9\n    retries: 0\n",
        encoding="utf-8",
    )
    return path


def _versions(config: Path) -> list[RetentionVersion]:
    with Ledger(f"sqlite:///{config.parent / 'ledger.sqlite'}") as ledger, ledger.read() as s:
        return list(s.scalars(select(RetentionVersion).order_by(RetentionVersion.id)).all())


# ---------------------------------------------------------------- template / validate / import


def test_template_writes_the_standard_headers_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "模板.xlsx"
    assert _cli("template", str(out)).exit_code == 0
    ws = load_workbook(out).worksheets[0]
    headers = [c.value for c in ws[int(ws.print_title_rows.replace("$", "").split(":")[0])]]
    assert headers[:3] == ["事项编码", "事项名称", "事项类型"] and "保管期限" in headers
    assert _cli("template", str(out)).exit_code == 2
    assert _cli("template", str(tmp_path / "t.csv")).exit_code == 2


def test_validate_good_workbook(good: Path) -> None:
    r = _cli("validate", str(good), "--json")
    assert r.exit_code == 0, r.output
    assert _json(r) == {"errors": [], "warnings": [], "rules": 4}
    assert _cli("validate", str(good)).exit_code == 0


def test_validate_bad_workbook_reports_each_error_with_its_place(bad: Path) -> None:
    r = _cli("validate", str(bad), "--json")
    assert r.exit_code == 1
    body = _json(r)
    assert set(body) == {"errors", "warnings", "rules"}
    assert body["rules"] == 2  # rows 2 and 5 are good
    for item in body["errors"] + body["warnings"]:
        assert set(item) == {"sheet", "row", "column", "value", "message"}
    placed = {(e["row"], e["value"]) for e in body["errors"]}
    assert (3, "20年") in placed and (4, "也许") in placed
    assert {e["row"] for e in body["errors"]} == {3, 4}
    text = _cli("validate", str(bad))
    assert text.exit_code == 1 and "20年" in text.output and "也许" in text.output


def test_validate_missing_file_is_bad_usage(tmp_path: Path) -> None:
    assert _cli("validate", str(tmp_path / "nope.xlsx")).exit_code == 2


def test_import_refuses_an_invalid_table_and_stores_nothing(bad: Path, config: Path) -> None:
    r = _cli("import", str(bad), "-c", str(config), "--json")
    assert r.exit_code == 1
    body = json.loads(r.stdout)
    assert body["imported"] is False and {e["row"] for e in body["errors"]} == {3, 4}
    assert _versions(config) == []


def test_import_twice_stores_one_version(good: Path, config: Path) -> None:
    first = _cli("import", str(good), "--effective", "2020-01-01", "-c", str(config), "--json")
    assert first.exit_code == 0, first.output
    a = _json(first)
    assert a["created"] is True and a["label"] == "v1" and a["rules"] == 4 and a["effective_date"] == "2020-01-01"
    second = _cli("import", str(good), "-c", str(config))
    assert second.exit_code == 0
    assert "already stored" in second.output and a["content_hash"] in second.output and "v1" in second.output
    stored = _versions(config)
    assert [(v.label, v.content_hash) for v in stored] == [("v1", a["content_hash"])]


def test_import_bad_effective_date_is_bad_usage(good: Path, config: Path) -> None:
    assert _cli("import", str(good), "--effective", "2020-13-01", "-c", str(config)).exit_code == 2
    assert _versions(config) == []


# ---------------------------------------------------------------- list / show / diff


@pytest.fixture
def two_versions(tmp_path: Path, good: Path, config: Path) -> Path:
    newer = tmp_path / "newer.csv"
    rows = _rows(row3={"保管期限": "30年"})
    rows.append({"事项类型": "02", "材料类别": "全部", "归档范围": "不归档"})
    headers = list(dict.fromkeys(k for r in GOOD_ROWS for k in r))
    with newer.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=headers)
        w.writeheader()
        w.writerows(rows)
    assert _cli("import", str(good), "--effective", "2020-01-01", "-c", str(config)).exit_code == 0
    assert _cli("import", str(newer), "--effective", "2024-01-01", "-c", str(config)).exit_code == 0
    return newer


def test_list_marks_the_version_in_force(two_versions: Path, config: Path) -> None:
    r = _cli("list", "-c", str(config), "--json")
    assert r.exit_code == 0
    rows = _json(r)
    assert [(v["label"], v["rules"], v["in_force"]) for v in rows] == [("v1", 4, False), ("v2", 5, True)]
    assert "v2" in _cli("list", "-c", str(config)).output


def test_show_speaks_the_archivists_terms(two_versions: Path, config: Path) -> None:
    r = _cli("show", "v1", "-c", str(config), "--json")
    assert r.exit_code == 0
    rules = _json(r)["rules"]
    assert [x["保管期限"] for x in rules] == ["30年", "10年", "10年", "永久"]
    assert rules[0]["材料类别"] == "全部" and rules[1]["材料类别"] == "过程"
    text = _cli("show", "v1", "-c", str(config)).output
    assert "事项编码" in text and "永久" in text and "D30" not in text
    assert _cli("show", "v9", "-c", str(config)).exit_code == 2


def test_diff_two_versions_and_a_draft_against_the_version_in_force(
    two_versions: Path, good: Path, config: Path
) -> None:
    d = _json(_cli("diff", "v1", "v2", "-c", str(config), "--json"))
    assert d["summary"] == {"added": 1, "removed": 0, "changed": 1, "unchanged": 3}
    assert d["changed"][0]["changes"] == {"保管期限": {"from": "10年", "to": "30年"}}
    assert d["added"][0]["归档范围"] == "不归档"
    # a draft file against the version in force today (v2): the draft is v1's content
    d = _json(_cli("diff", str(good), "-c", str(config), "--json"))
    assert (d["old_version"], d["new_version"]) == ("v2", "good.xlsx")
    assert d["summary"] == {"added": 0, "removed": 1, "changed": 1, "unchanged": 3}
    text = _cli("diff", "v1", "v2", "-c", str(config)).output
    assert "10年 → 30年" in text


# ---------------------------------------------------------------- coverage


def _catalogue(tmp_path: Path) -> Path:
    path = tmp_path / "目录.csv"
    rows = [
        ("330106-XK-0001", "食品经营许可", "行政许可", AGENCY_A),  # by 事项编码
        ("330106-XK-0009", "其他许可", "01", AGENCY_B),  # by 事项类型 01
        ("330106-CF-0001", "行政处罚", "02", AGENCY_A),  # nothing for 02
        ("330106-JC-0001", "环境检查", "06", AGENCY_B),  # by 事项类型+实施机构
        ("330106-JC-0002", "食品检查", "06", AGENCY_A),  # 06 only for agency B
    ]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["事项编码", "事项名称", "事项类型", "实施机构"])
        w.writerows(rows)
    return path


def test_coverage_lists_exactly_the_uncovered_codes_and_writes_them(tmp_path: Path, good: Path) -> None:
    catalogue = _catalogue(tmp_path)
    out = tmp_path / "未覆盖.xlsx"
    r = _cli("coverage", "--catalogue", str(catalogue), "--table", str(good), "--out", str(out), "--json")
    assert r.exit_code == 1  # uncovered entries would be quarantined
    body = _json(r)
    assert (body["catalogue"], body["covered"]) == (5, 3)
    assert body["uncovered"] == ["330106-CF-0001", "330106-JC-0002"]
    assert body["by_agency"][AGENCY_A] == {"catalogue": 3, "covered": 1, "uncovered": 2}
    assert body["by_matter_type"]["06"] == {"catalogue": 2, "covered": 1, "uncovered": 1}
    ws = load_workbook(out).worksheets[0]
    written = [tuple(c.value for c in row) for row in ws.iter_rows()]
    assert written[0] == ("事项编码", "事项名称", "事项类型", "实施机构")
    assert [w[0] for w in written[1:]] == ["330106-CF-0001", "330106-JC-0002"]
    out_csv = tmp_path / "未覆盖.csv"
    assert _cli("coverage", "--catalogue", str(catalogue), "--table", str(good), "--out", str(out_csv)).exit_code == 1
    with out_csv.open(encoding="utf-8-sig") as fh:
        assert [row["事项编码"] for row in csv.DictReader(fh)] == ["330106-CF-0001", "330106-JC-0002"]


def test_coverage_against_the_ledger_version_in_force(tmp_path: Path, two_versions: Path, config: Path) -> None:
    catalogue = _catalogue(tmp_path)
    body = _json(_cli("coverage", "--catalogue", str(catalogue), "-c", str(config), "--json"))
    assert body["table_version"] == "v2"
    assert body["uncovered"] == ["330106-JC-0002"]  # v2 has a 不归档 rule for 02: a decision


def test_coverage_refuses_contradictory_or_missing_flags(tmp_path: Path, good: Path, config: Path) -> None:
    catalogue = _catalogue(tmp_path)
    both = _cli("coverage", "--catalogue", str(catalogue), "--from-source", "unified", "-c", str(config))
    assert both.exit_code == 2 and "exactly one" in both.output
    neither = _cli("coverage", "--table", str(good), "-c", str(config))
    assert neither.exit_code == 2
    out = tmp_path / "x.txt"
    assert _cli("coverage", "--catalogue", str(catalogue), "--table", str(good), "--out", str(out)).exit_code == 2
    assert not out.exists()


# ---------------------------------------------------------------- explain


def test_explain_by_code(two_versions: Path, config: Path) -> None:
    r = _cli("explain", "--code", "330106-XK-0001", "--type", "01", "--agency", AGENCY_A, "--group", "过程",
             "--date", "2023-05-01", "-c", str(config), "--json")
    assert r.exit_code == 0, r.output
    e = _json(r)
    assert e["query"]["table_version"] == "v1"  # v2 is effective from 2024
    assert e["status"] == "decided" and e["decision"]["row"] == 3 and e["decision"]["period"] == "D10"
    assert {x["row"] for x in e["lost"]} == {2, 4}
    assert all("less specific" in x["why"] for x in e["lost"])
    text = _cli("explain", "--code", "330106-XK-0001", "--date", "2025-01-01", "-c", str(config))
    assert text.exit_code == 0 and "行 2" in text.output and "行 3" in text.output  # 30年 decides; 过程 rule named
    none = _cli("explain", "--code", "330106-CF-0001", "--type", "02", "--date", "2023-05-01", "-c", str(config))
    assert none.exit_code == 1 and "no rule" in none.output


def test_explain_refuses_mixed_flags(config: Path) -> None:
    assert _cli("explain", "--source", "unified", "--matter", "1", "--code", "X", "-c", str(config)).exit_code == 2
    assert _cli("explain", "--source", "unified", "-c", str(config)).exit_code == 2
    assert _cli("explain", "-c", str(config)).exit_code == 2


# ---------------------------------------------------------------- due


def _record(n: int, state: str, period: str | None, due: str | None) -> MatterRecord:
    done = datetime(2026, 3, n, 2, 0, tzinfo=UTC)
    return MatterRecord(
        source="unified",
        project_id=f"P{n}",
        content_hash=f"{n:064d}",
        state=state,
        service_code="330106-XK-0001",
        service_name="食品经营许可",
        matter_type="01",
        agency=AGENCY_A,
        title=f"题名{n}",
        completed_at=done,
        source_updated_at=done,
        fonds="Z109",
        year=2026,
        retention_period=period,
        archival_code=f"Z109-WS·2026·{period}·SJ-{n:04d}" if period else None,
        retention_version="v1",
        retention_row=2,
        disposition_date=due,
        record={},
        appraisal={},
    )


def test_due_lists_only_verified_records_due_before_the_date(tmp_path: Path, config: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger, ledger.transaction() as s:
        s.add_all([
            _record(1, MatterState.VERIFIED, "D10", "2036-12-31"),
            _record(2, MatterState.VERIFIED, "D30", "2056-12-31"),
            _record(3, MatterState.VERIFIED, "Y", None),
            _record(4, MatterState.TRANSFERRED, "D10", "2036-12-31"),
            _record(5, MatterState.VERIFIED, "D10", "2037-01-01"),
        ])
    out = tmp_path / "到期.csv"
    r = _cli("due", "--before", "2037-01-01", "--out", str(out), "-c", str(config), "--json")
    assert r.exit_code == 0, r.output
    body = _json(r)
    assert [x["档号"] for x in body["records"]] == ["Z109-WS·2026·D10·SJ-0001"]
    rec = body["records"][0]
    shown = (rec["题名"], rec["保管期限"], rec["办结日期"], rec["到期日期"])
    assert shown == ("题名1", "10年", "2026-03-01", "2036-12-31")
    with out.open(encoding="utf-8-sig") as fh:
        assert [row["档号"] for row in csv.DictReader(fh)] == ["Z109-WS·2026·D10·SJ-0001"]
    later = _json(_cli("due", "--before", "2999-01-01", "-c", str(config), "--json"))
    assert [x["档号"] for x in later["records"]] == [
        "Z109-WS·2026·D10·SJ-0001", "Z109-WS·2026·D10·SJ-0005", "Z109-WS·2026·D30·SJ-0002"
    ]  # 永久 never; not yet verified never
    assert "永久" not in _cli("due", "--before", "2999-01-01", "-c", str(config)).output
    assert _cli("due", "--before", "soon", "-c", str(config)).exit_code == 2


def test_due_query_leaves_out_permanent_records_whatever_date_they_carry(tmp_path: Path) -> None:
    from ledger import queries

    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
        with ledger.transaction() as s:
            s.add_all([
                _record(1, MatterState.VERIFIED, "Y", "2030-01-01"),  # 永久 with a stray date: still never due
                _record(2, MatterState.VERIFIED, None, "2030-01-01"),  # no period recorded: listed for a person
                _record(3, MatterState.VERIFIED, "D10", "2030-01-02"),
                _record(4, MatterState.QUARANTINED, "D10", "2030-01-01"),
            ])
        with ledger.read() as s:
            assert [r.project_id for r in queries.due_for_appraisal(s, date(2031, 1, 1))] == ["P2", "P3"]
            assert queries.due_for_appraisal(s, date(2030, 1, 1)) == []


# ---------------------------------------------------------------- end to end over the demo world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from guidang_demo.unified_simulator import UnifiedSimulator
    from guidang_demo.world import build_world
    from night.engine import run_nightly

    world = tmp_path_factory.mktemp("retention-cli") / "world"
    build_world(world)
    saved = os.environ.get("GUIDANG_UNIFIED_URL")
    try:
        with UnifiedSimulator(world / "sources" / "unified") as url:
            os.environ["GUIDANG_UNIFIED_URL"] = url
            summary = run_nightly(load_settings(world / "guidang.yaml"))
    finally:
        if saved is None:
            os.environ.pop("GUIDANG_UNIFIED_URL", None)
        else:
            os.environ["GUIDANG_UNIFIED_URL"] = saved
    assert summary["totals"]["archived"] > 100
    yield world


def test_every_demo_matter_explain_and_package_metadata_name_the_same_rule(night: Path) -> None:
    settings = load_settings(night / "guidang.yaml")
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        book = load_book(ledger, settings)
        with ledger.read() as s:
            records = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED.value)).all()
            rows = [(r.package_key, r.record) for r in records]
    assert len(rows) > 100
    periods = set()
    for package_key, stored in rows:
        matter = Matter.model_validate(stored)
        table = book.table_for(matter.completed_at.date())
        e = explain_matter(table, matter)
        tree = parse_xml(night / "archive" / package_key / "元数据.xml")
        view = read_metadata(tree)
        keep = tree.getroot().find("保管信息")
        assert e["status"] == "decided", (matter.key, e["message"])
        dec = e["decision"]
        assert (keep.findtext("保管期限表版本"), int(keep.findtext("规则行号"))) == (e["table_version"], dec["row"]), (
            matter.key,
            e["message"],
        )
        assert (view.scope, view.keep_period) == (dec["scope"], dec["period"]), matter.key
        assert keep.findtext("到期鉴定日期") == dec["disposition_date"], matter.key
        assert [x.text for x in keep.findall("不归档材料类别")] == dec["excluded_groups"], matter.key
        periods.add(dec["period"])
    assert len(periods) >= 2  # the demo decides more than one period: the comparison means something


def test_explain_a_demo_matter_from_the_source_and_from_the_ledger(
    night: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guidang_demo.unified_simulator import UnifiedSimulator

    settings = load_settings(night / "guidang.yaml")
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger, ledger.read() as s:
        rec = s.scalars(
            select(MatterRecord)
            .where(MatterRecord.state == MatterState.VERIFIED.value, MatterRecord.source == "unified")
            .order_by(MatterRecord.id)
        ).first()
        assert rec is not None
        project_id, version, row, code = rec.project_id, rec.retention_version, rec.retention_row, rec.archival_code
        tree = parse_xml(night / "archive" / rec.package_key / "元数据.xml")
    keep = tree.getroot().find("保管信息")
    assert (keep.findtext("保管期限表版本"), int(keep.findtext("规则行号"))) == (version, row)

    with UnifiedSimulator(night / "sources" / "unified") as url:
        monkeypatch.setenv("GUIDANG_UNIFIED_URL", url)
        r = _cli("explain", "--source", "unified", "--matter", project_id, "-c", str(night / "guidang.yaml"), "--json")
    assert r.exit_code == 0, r.output
    e = json.loads(r.stdout)
    assert e["from"] == "source unified"
    assert (e["table_version"], e["decision"]["row"]) == (version, row)
    assert e["ledger"]["agrees"] is True and e["ledger"]["archival_code"] == code

    # the source is down: the ledger's stored record is judged instead, with the same answer
    offline = night / "offline.yaml"
    offline.write_text((night / "guidang.yaml").read_text(encoding="utf-8").replace(
        "    page_size: 100\n", "    page_size: 100\n    retries: 0\n", 1), encoding="utf-8")
    monkeypatch.setenv("GUIDANG_UNIFIED_URL", f"http://127.0.0.1:{_free_port()}")
    r = _cli("explain", "--source", "unified", "--matter", project_id, "-c", str(offline))
    assert r.exit_code == 0, r.output
    assert "not reachable" in r.output and f"保管期限表版本 {version}, 规则行号 {row}" in r.output


def test_coverage_from_the_demo_source_names_what_the_night_quarantined(
    night: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guidang_demo.unified_simulator import UnifiedSimulator

    settings = load_settings(night / "guidang.yaml")
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger, ledger.read() as s:
        no_rule = {
            e.record["matter"]["service_code"]
            for e in s.scalars(select(QuarantineEntry)).all()
            if "Q-RETENTION-NO-RULE" in e.codes and e.source == "unified"
        }
        archived = set(s.scalars(select(MatterRecord.service_code).where(MatterRecord.source == "unified")).all())
    assert no_rule
    with UnifiedSimulator(night / "sources" / "unified") as url:
        monkeypatch.setenv("GUIDANG_UNIFIED_URL", url)
        r = _cli("coverage", "--from-source", "unified", "--date", "2026-11-25",
                 "-c", str(night / "guidang.yaml"), "--json")
    assert r.exit_code == 1, r.output
    body = json.loads(r.stdout)
    assert no_rule <= set(body["uncovered"])
    assert not archived & set(body["uncovered"])
    assert body["catalogue"] == body["covered"] + len(body["uncovered"])
