"""`guidang check` over many packages in one process: a folder holding packages (as an archive's root
does), several targets, and --all (every archived matter in the ledger, read back from an fs
repository). Each package is reported as it would be alone, then a total; one bad package fails
the command (exit 1) without stopping the others."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tests.test_eep import archive, tamper
from tests.test_packager_support import build

runner = CliRunner(env={"GUIDANG_CONFIG": None})


def check(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, ["check", *args])
    return r.exit_code, r.output


def three_packages(tmp_path: Path) -> Path:
    """An archive-like tree: Z/2026/D30/{a,b,c}, each a real package, and a folder that is none."""
    built = build(tmp_path / "built").folder
    root = tmp_path / "archive"
    for name in ("a", "b", "c"):
        shutil.copytree(built, root / "Z" / "2026" / "D30" / name)
    (root / "transfers" / "x").mkdir(parents=True)
    (root / "transfers" / "x" / "note.txt").write_text("not a package\n")
    return root


def test_a_folder_of_packages_reports_each_and_a_total(tmp_path: Path) -> None:
    root = three_packages(tmp_path)
    code, out = check(str(root), "--config", str(tmp_path / "absent.yaml"))
    assert code == 0, out
    assert out.count("结论: 通过") == 3 and out.count("== ") == 3
    assert "合计: 3 件  通过 3  不通过 0" in out

    tamper(root / "Z/2026/D30/b/申报材料/申请书.pdf")
    code, out = check(str(root))
    assert code == 1
    assert "合计: 3 件  通过 2  不通过 1" in out
    assert f"  不通过: {root / 'Z/2026/D30/b'}" in out
    b_report = out.split(f"== {root / 'Z/2026/D30/b'}")[1].split("== ")[0]
    assert "GD-1-2" in b_report and "申报材料/申请书.pdf" in b_report


def test_json_lists_every_package_and_the_total(tmp_path: Path) -> None:
    root = three_packages(tmp_path)
    (root / "Z/2026/D30/c/notes.txt").write_text("left behind\n")
    code, out = check(str(root), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["total"] == {"packages": 3, "passed": 2, "failed": 1,
                             "failed_targets": [str(root / "Z/2026/D30/c")]}
    by_target = {p["target"]: p for p in data["packages"]}
    assert by_target[str(root / "Z/2026/D30/c")]["failed_items"] == ["GD-4-2"]
    assert by_target[str(root / "Z/2026/D30/a")]["passed"] is True
    assert all(p["items"] for p in data["packages"])


def test_several_targets_a_missing_one_fails_without_stopping_the_rest(tmp_path: Path) -> None:
    root = three_packages(tmp_path)
    a, c = root / "Z/2026/D30/a", root / "Z/2026/D30/c"
    code, out = check(str(a), str(tmp_path / "gone" / "pkg"), str(c))
    assert code == 1
    assert out.count("结论: 通过") == 2
    assert "合计: 3 件  通过 2  不通过 1" in out and "no such package folder" in out


def test_all_checks_every_archived_matter_the_ledger_knows(tmp_path: Path) -> None:
    archived = archive(tmp_path, build(tmp_path))
    code, out = check("--all", "--config", str(archived.config), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["total"]["packages"] == 1 and data["total"]["passed"] == 1
    assert data["packages"][0]["target"] == archived.archival_code

    tamper(archived.stored("申报材料/申请书.pdf"))
    code, out = check("--all", "--config", str(archived.config))
    assert code == 1
    assert "GD-1-2" in out and f"  不通过: {archived.archival_code}" in out


def test_a_folder_without_packages_or_no_target_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out = check(str(tmp_path / "empty"))
    assert code == 2 and "no package found" in out
    code, out = check()
    assert code == 2
