"""A demo night's register (`guidang audit register`) as HTML and XLSX with the repository's totals;
`guidang check` on a DA/T 93 batch; 档号 typed with ASCII hyphens; `guidang audit log`'s filters."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lxml import html as lxml_html
from openpyxl import load_workbook
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app
from ledger.models import MatterRecord, MatterState, Run
from night.engine import run_nightly
from packager.transfer import CATALOGUE_FILE, REGISTER_XML_FILE
from schemas.config import load_settings
from schemas.layout import COMPLETION_MARKER, GROUP_FOLDERS
from tests.world_support import unified_running

runner = CliRunner(env={"GUIDANG_CONFIG": None})


@pytest.fixture(scope="module")
def archived(small_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    world = tmp_path_factory.mktemp("register") / "world"
    shutil.copytree(small_pristine, world)
    with unified_running(world):
        summary = run_nightly(load_settings(world / "guidang.yaml"))
    assert summary["status"] == "completed"
    return world, summary


def cli(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.output


def _night_date(world: Path, run_id: str) -> str:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        as_of = s.get(Run, run_id).parameters["as_of"]
    engine.dispose()
    return datetime.fromisoformat(as_of).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()


def _repository_totals(archive: Path) -> tuple[int, int, int]:
    """Counted from the archive folder itself: complete packages, their documents and bytes."""
    packages = files = size = 0
    for marker in archive.rglob(COMPLETION_MARKER):
        packages += 1
        for p in marker.parent.rglob("*"):
            if p.is_file() and p.relative_to(marker.parent).parts[0] in GROUP_FOLDERS:
                files += 1
                size += p.stat().st_size
    return packages, files, size


def test_a_nights_register_opens_as_html_and_xlsx_and_its_totals_are_the_repositorys(
    archived: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    world, summary = archived
    packages, files, size = _repository_totals(world / "archive")
    assert packages == summary["totals"]["archived"]
    day = _night_date(world, summary["run_id"])
    page, book = tmp_path / "register.html", tmp_path / "register.xlsx"
    code, out = cli("audit", "register", "--config", str(world / "guidang.yaml"), "--night", day,
                    "--html", str(page), "--xlsx", str(book), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["agrees"] and data["problems"] == []
    assert (data["repository"]["packages"], data["repository"]["files"], data["repository"]["bytes"]) == (
        packages, files, size)
    assert (data["ledger"]["packages"], data["ledger"]["files"], data["ledger"]["bytes"]) == (packages, files, size)

    wb = load_workbook(book)
    assert wb.sheetnames == ["登记表", "目录"]
    cat = wb["目录"]
    rows = list(cat.iter_rows(values_only=True))
    assert rows[0][:2] == ("顺序号", "档号")
    listed = [r for r in rows[1:] if isinstance(r[0], int)]
    assert len(listed) == packages
    total_row = rows[-1]
    assert total_row[0] == "合计" and total_row[7] == files and total_row[8] == size
    assert sum(r[7] for r in listed) == files and sum(r[8] for r in listed) == size
    assert str(cat.page_setup.paperSize) == cat.PAPERSIZE_A4 and cat.print_title_rows == "$1:$1"
    assert str(wb["登记表"].page_setup.paperSize) == wb["登记表"].PAPERSIZE_A4
    summary_text = " ".join(str(c) for row in wb["登记表"].iter_rows(values_only=True) for c in row if c)
    assert f"存储库实有 {packages} 件" in summary_text and "与账本一致" in summary_text
    assert "账本检查点" in summary_text

    doc = lxml_html.fromstring(page.read_bytes())
    assert "size: A4" in doc.findtext(".//style")
    body_rows = doc.xpath("//table[@class='listing']/tbody/tr")
    assert len(body_rows) == packages
    foot = [c.text_content() for c in doc.xpath("//table[@class='listing']/tfoot/tr/*")]
    assert f"合计 {packages} 件" in foot[0] and str(files) in foot and str(size) in foot


def test_a_batch_register_and_a_repository_that_differs(
    archived: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    world, summary = archived
    batch = summary["transfer_batches"][0]
    work = tmp_path / "world"
    shutil.copytree(world, work)
    code, out = cli("audit", "register", "--config", str(work / "guidang.yaml"), "--batch", batch, "--json")
    assert code == 0 and json.loads(out)["agrees"]
    doc = next((work / "archive").rglob("申报材料/*.pdf"))
    doc.unlink()  # a document gone from the repository: the register must not claim it
    code, out = cli("audit", "register", "--config", str(work / "guidang.yaml"), "--batch", batch)
    assert code == 1 and "DIFFERS" in out and "存储库文档" in out
    assert cli("audit", "register", "--config", str(work / "guidang.yaml"), "--batch", "Z109-20990101-deadbeef")[0] == 2
    assert cli("audit", "register", "--config", str(work / "guidang.yaml"))[0] == 2


def test_check_accepts_a_batch_id_and_a_batch_folder(archived: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    world, summary = archived
    batch = summary["transfer_batches"][0]
    config = str(world / "guidang.yaml")
    code, out = cli("check", batch, "--config", config)
    assert code == 0 and "结论: 通过" in out, out
    folder = tmp_path / batch
    shutil.copytree(world / "archive" / "transfers" / batch, folder)
    assert cli("check", str(folder), "--config", config)[0] == 0
    catalogue = folder / CATALOGUE_FILE
    text = catalogue.read_text(encoding="utf-8")
    first = text.index("<条目>")
    catalogue.write_text(text[:first] + text[text.index("</条目>", first) + len("</条目>"):], encoding="utf-8")
    code, out = cli("check", str(folder), "--config", config, "--json")
    assert code == 1
    found = {f["code"] for f in json.loads(out)["findings"]}
    assert {"A-BATCH-LISTING", "A-BATCH-TOTALS"} <= found
    (folder / REGISTER_XML_FILE).unlink()
    code, out = cli("check", str(folder), "--config", config)
    assert code == 1 and "A-BATCH-FILE-MISSING" in out


def test_an_archival_code_typed_with_ascii_hyphens(archived: tuple[Path, dict[str, Any]]) -> None:
    world, _ = archived
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        code = s.scalars(select(MatterRecord.archival_code).where(MatterRecord.state == MatterState.VERIFIED)
                         .limit(1)).one()
    engine.dispose()
    assert "·" in code
    typed = code.replace("·", "-")
    status, out = cli("check", typed, "--config", str(world / "guidang.yaml"), "--quick")
    assert status == 0 and code in out
    status, out = cli("check", typed[:-1] + "9", "--config", str(world / "guidang.yaml"))
    assert status == 2 and "'·'" in out
    status, out = cli("audit", "log", "--config", str(world / "guidang.yaml"), "--archival-code", typed,
                      "--format", "json")
    events = json.loads(out)["events"]
    assert status == 0 and events and all(e["档号"] == code for e in events)


def test_audit_log_filters_formats_and_pages(archived: tuple[Path, dict[str, Any]]) -> None:
    world, summary = archived
    config = str(world / "guidang.yaml")
    status, out = cli("audit", "log", "--config", config, "--kind", "verified", "--format", "json",
                      "--page-size", "5")
    data = json.loads(out)
    assert status == 0 and data["total"] == summary["totals"]["archived"] and len(data["events"]) == 5
    assert data["pages"] == -(-data["total"] // 5)
    page2 = json.loads(cli("audit", "log", "--config", config, "--kind", "verified", "--format", "json",
                           "--page-size", "5", "--page", "2")[1])["events"]
    assert {e["seq"] for e in page2}.isdisjoint({e["seq"] for e in data["events"]})

    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        rec = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED).limit(1)).one()
        same_agency = len(s.scalars(select(MatterRecord).where(MatterRecord.agency == rec.agency,
                                                               MatterRecord.state == MatterState.VERIFIED)).all())
    engine.dispose()
    by_agency = json.loads(cli("audit", "log", "--config", config, "--agency", rec.agency, "--kind", "verified",
                               "--format", "json")[1])
    assert by_agency["total"] == same_agency
    for option, value in (("--service-code", rec.service_code), ("--matter-type", rec.matter_type),
                          ("--project-id", rec.project_id), ("--source", rec.source), ("--run", summary["run_id"])):
        got = json.loads(cli("audit", "log", "--config", config, option, value, "--format", "json",
                             "--page-size", "1000")[1])["events"]
        assert got and any(e["办件编号"] == rec.project_id for e in got), option
    status, out = cli("audit", "log", "--config", config, "--project-id", rec.project_id, "--format", "csv")
    table = list(csv.reader(io.StringIO(out)))
    assert status == 0 and table[0][:3] == ["seq", "at", "kind"]
    assert [r[2] for r in table[1:]][:3] == ["numbered", "transferred", "verified"]
    day = _night_date(world, summary["run_id"])
    assert json.loads(cli("audit", "log", "--config", config, "--from", "2000-01-01", "--to", "2000-01-02",
                          "--format", "json")[1])["total"] == 0
    assert json.loads(cli("audit", "log", "--config", config, "--from", day, "--to", day,
                          "--format", "json")[1])["total"] > 0
    status, out = cli("audit", "log", "--config", config, "--kind", "no-such-kind")
    assert status == 2 and "no such event kind" in out
    status, out = cli("audit", "log", "--config", config)
    assert status == 0 and "page 1 of" in out
