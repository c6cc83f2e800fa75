"""Times in the configured zone, and a DA/T 93 登记表 that counts documents and prints on A4.

Every check reads what a user would read: the archive's 元数据.xml, 检测报告.xml and transfer files,
and the exit code and output of the command line.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree
from lxml import html as lxml_html
from typer.testing import CliRunner

from flows.cli import app
from night.engine import run_nightly
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


# -- times in the configured zone --------------------------------------------------------------

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


# -- the DA/T 93 登记表 ---------------------------------------------------------------------------

def _is_document(pkg: Path, f: Path) -> bool:
    return f.is_file() and f.parent != pkg  # documents live in the material folders, nothing else does


def test_register_counts_documents_only(shanghai_night: Path) -> None:
    documents = sum(1 for pkg in _packages(shanghai_night) for f in pkg.rglob("*") if _is_document(pkg, f))
    doc_bytes = sum(f.stat().st_size for pkg in _packages(shanghai_night) for f in pkg.rglob("*")
                    if _is_document(pkg, f))
    register = etree.parse(str(_batch(shanghai_night) / "电子档案移交与接收登记表.xml"))
    assert register.findtext("移交电子档案数量") == str(len(_packages(shanghai_night)))
    assert register.findtext("电子文件数量") == str(documents)
    assert register.findtext("字节数") == str(doc_bytes)
    readme = (_batch(shanghai_night) / "说明文件.txt").read_text(encoding="utf-8")
    assert f"电子文件 {documents} 个" in readme
    assert "不含" in readme and METADATA_FILE in readme  # says what the byte totals cover


def _html_listing(batch: Path) -> dict[str, tuple[str, str, str]]:
    page = lxml_html.fromstring((batch / "电子档案移交与接收登记表.html").read_bytes())
    rows = page.xpath("//table[@class='listing']/tbody/tr")
    return {r[1].text_content(): (r[2].text_content(), r[3].text_content(), r[4].text_content()) for r in rows}


def test_register_per_package_counts_and_titles_equal_the_metadata(shanghai_night: Path) -> None:
    batch = _batch(shanghai_night)
    listing = _html_listing(batch)
    catalogue = {e.findtext("档号"): e for e in etree.parse(str(batch / "目录文件.xml")).getroot().findall("条目")}
    packages = _packages(shanghai_night)
    assert set(listing) == set(catalogue) == {p.name for p in packages}
    for pkg in packages:
        md = etree.parse(str(pkg / METADATA_FILE))
        title, files, size = listing[pkg.name]
        assert (files, size) == (md.findtext("形式特征/件数"), md.findtext("形式特征/总字节数")), pkg.name
        assert title == md.findtext("内容描述/题名") == catalogue[pkg.name].findtext("题名"), pkg.name


def test_register_html_prints_on_a4_with_repeated_header_and_signatures_after_the_list(
    shanghai_night: Path,
) -> None:
    page = (_batch(shanghai_night) / "电子档案移交与接收登记表.html").read_text(encoding="utf-8")
    css = re.sub(r"\s+", " ", page[page.index("<style>"):page.index("</style>")])
    assert re.search(r"@page ?\{[^}]*size: ?A4", css)
    assert re.search(r"thead ?\{[^}]*display: ?table-header-group", css)
    assert re.search(r"white-space: ?nowrap", css)
    assert "counter(page)" in css
    tree = lxml_html.fromstring(page.encode("utf-8"))
    assert tree.xpath("//table[@class='listing']/thead/tr/th")
    codes = tree.xpath("//table[@class='listing']/tbody/tr/td[2]")
    assert codes and all("code" in (td.get("class") or "") for td in codes)
    listing_end = page.index("</table>", page.index('class="listing"'))
    for label in ("移交单位", "接收单位", "移交人", "接收人", "日期"):
        assert page.index(label, listing_end) > listing_end, label


