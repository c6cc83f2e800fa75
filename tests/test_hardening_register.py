"""Hardening (issue 11, points 13, 14, 16): times in the configured zone, a DA/T 93 登记表 that
counts documents and prints on A4, and a configuration reference that cannot drift.

Every check reads what a user would read: the archive's 元数据.xml, 检测报告.xml and transfer files,
the generated reference files, and the exit code and output of `guidang config check`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree
from typer.testing import CliRunner

from flows.cli import app
from flows.night import run_nightly
from schemas.config import load_settings
from schemas.findings import GuidangError
from schemas.layout import CHECK_REPORT_FILE, COMPLETION_MARKER, METADATA_FILE, TRANSFERS_PREFIX
from tests.world_support import simulator

AS_OF = datetime.fromisoformat("2026-11-26T02:00:00+08:00")


def _config(world: Path, **top: Any) -> Path:
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    config.update(top)
    path = world / "guidang-test.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _night(world: Path, zone: str) -> Path:
    with simulator(world):
        result = run_nightly(load_settings(_config(world, timezone=zone)), now=AS_OF)
    assert result["status"] == "completed", result
    return world / "archive"


def _packages(archive: Path) -> list[Path]:
    return sorted(p.parent for p in archive.rglob(COMPLETION_MARKER))


def _batch(archive: Path) -> Path:
    batches = sorted((archive / TRANSFERS_PREFIX).iterdir())
    assert len(batches) == 1, batches
    return batches[0]


@pytest.fixture(scope="module")
def shanghai_night(small_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    world = tmp_path_factory.mktemp("shanghai") / "world"
    shutil.copytree(small_pristine, world)
    return _night(world, "Asia/Shanghai")


# -- 13: times in the configured zone --------------------------------------------------------------

def _package_times(archive: Path) -> tuple[list[str], list[str], list[str]]:
    archived, checked = [], []
    for pkg in _packages(archive):
        archived.append(etree.parse(str(pkg / METADATA_FILE)).findtext("保管信息/归档时间"))
        checked.append(etree.parse(str(pkg / CHECK_REPORT_FILE)).findtext("检测时间"))
    register = etree.parse(str(_batch(archive) / "电子档案移交与接收登记表.xml"))
    return archived, checked, [register.findtext("移交时间")]


def test_archived_checked_and_transfer_times_are_written_in_the_configured_zone(shanghai_night: Path) -> None:
    archived, checked, transferred = _package_times(shanghai_night)
    assert archived and checked
    for value in [*archived, *checked, *transferred]:
        assert value.endswith("+08:00"), value
    # the same instant as the run's time (the packages' 归档时间 is the run's nominal time)
    assert {datetime.fromisoformat(v) for v in archived} == {AS_OF}
    assert datetime.fromisoformat(transferred[0]) == AS_OF


def test_times_follow_another_configured_zone(small_world: Path) -> None:
    archived, checked, transferred = _package_times(_night(small_world, "Asia/Tokyo"))
    for value in [*archived, *checked, *transferred]:
        assert value.endswith("+09:00"), value
        assert datetime.fromisoformat(value) == AS_OF


@pytest.mark.parametrize("where", ["top", "source"])
def test_an_unknown_time_zone_is_a_configuration_error_naming_the_key(small_world: Path, where: str) -> None:
    if where == "top":
        path = _config(small_world, timezone="Mars/Olympus")
    else:
        config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
        next(s for s in config["sources"] if s["kind"] == "sql")["timezone"] = "Mars/Olympus"
        path = small_world / "guidang-test.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(GuidangError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "timezone" in message and "Mars/Olympus" in message
    result = CliRunner().invoke(app, ["retention", "due", "--before", "2100-01-01", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "Mars/Olympus" in result.output and "Traceback" not in result.output
