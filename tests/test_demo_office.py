"""Issue 32 item 5: the demo world's applicants hand in Word and Excel files among the 申报材料;
a night archives each with its PDF/A rendition (the real LibreOffice), the stored package passes
`guidang check`, and the EEP export and the DA/T 93 batch carry both files."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app
from ledger.models import MatterRecord, MatterState, QuarantineEntry
from night.engine import run_nightly
from night.quarantine_retry import retry_quarantined
from packager.eep import folder_reader, write_eep
from schemas.config import load_settings
from schemas.layout import METADATA_FILE
from tests.office_support import require_soffice
from tests.world_support import unified_running


def test_office_attachments_are_archived_with_renditions_checked_and_exported(small_world: Path,
                                                                                tmp_path: Path) -> None:
    require_soffice()
    with unified_running(small_world):
        summary = run_nightly(load_settings(small_world / "guidang.yaml"))
    assert not {r for r in summary["quarantine_reasons"] if "CONVER" in r}
    engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
    with Session(engine) as s:
        verified = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)).all()
        keys = [(r.archival_code, r.package_key) for r in verified]
    engine.dispose()
    archive = small_world / "archive"
    office = [(code, folder) for code, key in keys for folder in [archive / key]
              if any(p.suffix in (".docx", ".xlsx") for p in (folder / "申报材料").glob("*"))]
    kinds = {p.suffix for _, folder in office for p in (folder / "申报材料").glob("*")}
    assert {".docx", ".xlsx"} <= kinds, "the small world must carry a Word and an Excel attachment"

    for code, folder in office:
        root = etree.parse(str(folder / METADATA_FILE)).getroot()
        entries = {f.findtext("相对路径"): f for f in root.findall("文件信息/文件")}
        originals = [rel for rel in entries if rel.endswith((".docx", ".xlsx"))]
        for rel in originals:
            rendition = entries[rel + ".pdf"]
            assert rendition.findtext("格式转换/源文件") == rel
            assert rendition.findtext("PRONOM标识") == "fmt/477"
            assert (folder / rel).is_file() and (folder / (rel + ".pdf")).is_file()
        done = CliRunner().invoke(app, ["check", str(folder), "--config", str(small_world / "guidang.yaml")])
        assert done.exit_code == 0, done.output
        assert "original(s) kept beside their renditions" in done.output

        out = tmp_path / f"{code}.xml"
        write_eep(folder_reader(folder), out, creator="demo", created_at=datetime(2026, 12, 7, tzinfo=UTC))
        eep = etree.parse(str(out)).getroot()
        carried = {}
        for block in eep.iter("文档数据"):
            name = block.findtext(".//计算机文件名")
            carried[name] = base64.b64decode("".join(block.findtext(".//编码数据") or ""))
        for rel in originals:  # both files, byte for byte
            name = rel.split("/", 1)[1]
            assert carried[name] == (folder / rel).read_bytes()
            assert carried[name + ".pdf"] == (folder / (rel + ".pdf")).read_bytes()

    batches = [p for p in (archive / "transfers").iterdir() if p.is_dir()]
    register = etree.parse(str(batches[0] / "电子档案移交与接收登记表.xml")).getroot()
    assert int(register.findtext(".//移交电子档案数量")) == len(keys)
    done = CliRunner().invoke(app, ["check", batches[0].name, "--config", str(small_world / "guidang.yaml")])
    assert done.exit_code == 0, done.output


def test_a_night_without_libreoffice_quarantines_office_matters_and_a_retry_archives_them(small_world: Path) -> None:
    """The machine lacks LibreOffice: the night completes, the matters with office attachments are
    held Q-CONVERTER-MISSING, the others archived; once it is there, `quarantine retry` archives them."""
    require_soffice()
    config = small_world / "guidang.yaml"
    plain = config.read_text(encoding="utf-8")
    config.write_text(plain + "formats:\n  converter:\n    program: /nonexistent/soffice\n", encoding="utf-8")
    with unified_running(small_world):
        summary = run_nightly(load_settings(config))
    held = summary["quarantine_reasons"].get("Q-CONVERTER-MISSING", 0)
    assert held >= 2 and summary["totals"]["archived"] > 0
    engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
    with Session(engine) as s:
        entries = s.scalars(select(QuarantineEntry)).all()
        missing = [e for e in entries if "Q-CONVERTER-MISSING" in e.codes]
        assert len(missing) == held
        assert all(any("LibreOffice is not installed" in f["message"] for f in e.findings) for e in missing)
    config.write_text(plain, encoding="utf-8")  # LibreOffice installed (the default program)
    with unified_running(small_world):
        retried = retry_quarantined(load_settings(config), [e.id for e in missing])
    assert retried["totals"]["archived"] == held
    engine.dispose()
