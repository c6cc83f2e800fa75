"""`guidang check` over real packages: a package folder, and an archived matter by 档号 read back from
an fs repository through the ledger. Each defect exits 1 naming its DA/T 70 item; an unknown 档号 or
a missing path exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.repositories import FilesystemRepository
from connectors.repositories.base import StoredObject
from flows.cli import app
from night.lookup import PackageUnavailable, downloaded_package
from schemas.findings import code_text
from schemas.layout import COMPLETION_MARKER
from tests.pdf_support import make_encrypted_pdf
from tests.test_eep import archive, tamper
from tests.test_packager_support import build, replace_document

runner = CliRunner(env={"GUIDANG_CONFIG": None})


def check(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["check", *args])
    return r.exit_code, r.output


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return build(tmp_path).folder


def test_good_folder_passes(package: Path, tmp_path: Path) -> None:
    code, out = check(str(package), "--config", str(tmp_path / "absent.yaml"))
    assert code == 0, out
    for item in ("GD-1-1", "GD-1-2", "GD-2-3", "GD-3-3", "GD-4-2"):
        assert item in out and code_text(item) in out
    assert "结论: 通过" in out


def test_tampered_document_fails_fixity(package: Path) -> None:
    path = package / "过程材料/现场核查记录.pdf"
    data = bytearray(path.read_bytes())
    at = data.index(b"/CreationDate (D:2026") + len(b"/CreationDate (D:2026")
    data[at] = ord("1") if data[at] != ord("1") else ord("2")  # same size, same PDF version: only digests tell
    path.write_bytes(bytes(data))
    code, out = check(str(package))
    assert code == 1
    assert "GD-1-2" in out and "过程材料/现场核查记录.pdf" in out and "不通过" in out
    # the quick level does not hash, so it cannot see it
    code, out = check(str(package), "--quick")
    assert code == 0, out
    assert "未检测" in out


def test_stray_file_fails(package: Path) -> None:
    (package / "notes.txt").write_text("left behind\n")
    code, out = check(str(package), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["passed"] is False and report["failed_items"] == ["GD-4-2"]
    item = next(i for i in report["items"] if i["code"] == "GD-4-2")
    assert item["name"] == code_text("GD-4-2") and item["findings"][0]["where"] == "notes.txt"


def test_encrypted_pdf_fails(package: Path) -> None:
    replace_document(package, "结果材料/准予许可决定书.pdf", make_encrypted_pdf(["decision"]))
    code, out = check(str(package))
    assert code == 1
    assert "GD-3-3" in out and code_text("GD-3-3") in out
    assert "结论: 不通过 (GD-3-3)" in out


def test_missing_path_exits_2(tmp_path: Path) -> None:
    code, out = check(str(tmp_path / "nowhere"))
    assert code == 2
    assert "no such package folder" in out


def test_by_archival_code(tmp_path: Path) -> None:
    archived = archive(tmp_path, build(tmp_path))
    code, out = check(archived.archival_code, "--config", str(archived.config), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["passed"] and report["archival_code"] == archived.archival_code and report["notes"] == []
    assert report["level"] == "full"

    # a stored document altered after archiving
    tamper(archived.stored("申报材料/申请书.pdf"))
    code, out = check(archived.archival_code, "--config", str(archived.config))
    assert code == 1
    assert "GD-1-2" in out and "申报材料/申请书.pdf" in out


def test_by_archival_code_stray_object_and_no_marker(tmp_path: Path) -> None:
    archived = archive(tmp_path, build(tmp_path), marker=False)
    code, out = check(archived.archival_code, "--config", str(archived.config))
    assert code == 1
    assert "incomplete" in out and COMPLETION_MARKER in out
    FilesystemRepository(archived.repo_root).put_bytes(f"{archived.key}/{COMPLETION_MARKER}", b"{}")
    FilesystemRepository(archived.repo_root).put_bytes(f"{archived.key}/extra.txt", b"smuggled")
    code, out = check(archived.archival_code, "--config", str(archived.config), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["failed_items"] == ["GD-4-2"] and report["notes"] == []


def test_unknown_archival_code_exits_2(tmp_path: Path) -> None:
    archived = archive(tmp_path, build(tmp_path))
    code, out = check("Z109-WS·2026·D30·SJ-0999", "--config", str(archived.config))
    assert code == 2
    assert "not in the ledger" in out


def test_a_stored_key_that_would_escape_the_package_stops_the_download() -> None:
    """A package being re-checked is the thing not to trust: a key climbing out of it is refused."""

    class Planted:  # a store whose listing names an object outside the package folder
        def list(self, prefix: str) -> Iterator[StoredObject]:
            yield StoredObject(key=f"{prefix}../../outside.txt", size=1, sha256=None)

        def open(self, key: str) -> Iterator[bytes]:
            yield b"x"

    planted: Any = Planted()
    with pytest.raises(PackageUnavailable, match="escapes the package"), downloaded_package(planted, "pkg"):
        pass


def test_the_command_line_starts_without_prefect_the_ledger_or_the_stages() -> None:
    """`guidang --help` loads the command groups only; what a command needs is imported when it runs."""
    root = Path(__file__).resolve().parents[1]
    heavy = {"prefect", "sqlalchemy", "openpyxl", "lxml", "ledger", "connectors", "packager", "retention"}
    probe = f"import sys, flows.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    shown = subprocess.run([sys.executable, "-m", "flows.cli", "--help"], cwd=root, capture_output=True, text=True)
    assert shown.returncode == 0 and "retention" in shown.stdout and "quarantine" in shown.stdout
