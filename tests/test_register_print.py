"""The registers print: a night's 移交与接收登记表 and 目录 of about 240 件, printed to PDF by Debian's
Chromium (Playwright's page.pdf, the page's own @page sizes), fit A4 in few pages, with no column cut
off at the page's edge and none so narrow that its words break one character per line."""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import pytest

from packager.register import RegisterData, Totals, write_html
from packager.transfer import TransferRow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
A4_SHORT, A4_LONG = 595.3, 841.9  # points
AGENCIES = ["西湖区市场监督管理局", "西湖区住房和城乡建设局", "杭州市生态环境局西湖分局", "西湖区人力资源和社会保障局",
            "西湖区民政局", "西湖区发展和改革局", "西湖区卫生健康局"]
SERVICES = ["药品零售企业许可", "建筑工程施工许可", "食品生产经营日常监督检查", "职业技能等级认定", "婚姻登记档案查询",
            "企业投资项目备案", "对未取得食品经营许可从事食品经营活动的处罚", "个体工商户设立登记"]
APPLICANTS = ["杭州留下药店有限公司", "张＊", "杭州之江建设工程有限公司", "李＊＊", "浙江翠苑食品科技股份有限公司"]


def _night(n: int) -> RegisterData:
    rng = random.Random(7)
    rows = [TransferRow(
        archival_code=f"Z109-WS·2026·{rng.choice(['D30', 'D10', 'Y'])}·{rng.choice(['XK', 'SJ', 'CF', 'QT'])}-{i:04d}",
        responsible=rng.choice(AGENCIES), title=f"{rng.choice(SERVICES)}（{rng.choice(APPLICANTS)}）",
        date=f"202611{rng.randint(1, 30):02d}", period=rng.choice(["Y", "D30", "D10"]), pages=rng.randint(1, 60),
        bytes=rng.randint(10_000, 90_000_000), file_count=rng.randint(1, 12)) for i in range(1, n + 1)]
    totals = Totals(n, sum(r.file_count for r in rows), sum(r.bytes for r in rows), sum(r.pages for r in rows))
    return RegisterData(title="2026-12-01 夜间归档", fonds="Z109 杭州市西湖区数据资源管理局", rows=rows,
                        batches={r.archival_code: "Z109-20261201-ab12cd34" for r in rows}, ledger=totals,
                        repository=totals, generated_at="2026-12-02T02:41:07+08:00（生成时账本事件 4120，摘要 "
                        + "ab" * 32 + "）")


@pytest.fixture(scope="module")
def chromium_page():  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        if os.environ.get("GUIDANG_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium); .ci/run installs it")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


# Per printed table row: does a cell overflow its column (cut off), and is a column narrower than the
# widest "word" of its cells (a run of CJK text may break between characters, but never to one a line)?
MEASURE = """() => {
  const out = {tables: [], cut: [], narrow: []};
  for (const table of document.querySelectorAll('table')) {
    const r = table.getBoundingClientRect();
    out.tables.push({cls: table.className, right: r.right, width: r.width,
                     page: document.documentElement.clientWidth});
    for (const cell of table.querySelectorAll('td, th')) {
      if (cell.scrollWidth > cell.clientWidth + 1) out.cut.push(cell.textContent.slice(0, 40));
      const text = cell.textContent.trim();
      if (!text) continue;
      const range = document.createRange();
      range.selectNodeContents(cell);
      const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
      const chars = [...text].length;
      if (chars > 1 && lines >= chars - 1 && lines > 1) out.narrow.push(text.slice(0, 40));
    }
  }
  return out;
}"""


def _print(page, html: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    page.goto(html.as_uri())
    page.emulate_media(media="print")
    pdf = tmp_path / "printed.pdf"
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=False)
    return PdfReader(str(pdf))


def _register(tmp_path: Path) -> Path:
    html = tmp_path / "register.html"
    write_html(_night(240), html)
    return html


def _transfer_register(tmp_path: Path) -> Path:
    from datetime import UTC, datetime

    from packager.transfer import _html
    from schemas.config import Fonds

    html = tmp_path / "transfer.html"
    html.write_text(_html("Z109-20261201-ab12cd34", Fonds(code="Z109", name="杭州市西湖区数据资源管理局"),
                          _night(240).rows, datetime.now(UTC)), encoding="utf-8")
    return html


# (what is printed, the printable width in mm of the page its listing prints on)
REGISTERS = {"night register (console, audit register)": (_register, 297 - 24),
             "batch 登记表 (stored with the batch)": (_transfer_register, 210 - 24)}


@pytest.mark.parametrize("which", list(REGISTERS))
def test_240_packages_print_on_a4_in_at_most_12_pages_with_no_column_cut_or_too_narrow(
        chromium_page, tmp_path: Path, which: str) -> None:  # type: ignore[no-untyped-def]
    build, printable_mm = REGISTERS[which]
    html = build(tmp_path)
    reader = _print(chromium_page, html, tmp_path)
    sizes = {(round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in reader.pages}
    assert sizes <= {(595, 842), (842, 595)}, sizes  # A4, portrait or landscape
    assert len(reader.pages) <= 12, len(reader.pages)
    text = re.sub(r"\s+", " ", "".join(p.extract_text() for p in reader.pages))
    assert "Z109-WS·2026" in text and "合计 240 件" in text and "移交人" in text
    for i in (1, 120, 240):  # every row's 档号 printed whole, not cut at the page's right edge
        assert f"-{i:04d}" in text
    # measured at the printable width of the page the listing prints on
    chromium_page.set_viewport_size({"width": round(printable_mm / 25.4 * 96), "height": 700})
    chromium_page.goto(html.as_uri())
    chromium_page.emulate_media(media="print")
    measured = chromium_page.evaluate(MEASURE)
    for t in measured["tables"]:
        assert t["right"] <= t["page"] + 1, t
    assert not measured["cut"], measured["cut"][:5]
    assert not measured["narrow"], measured["narrow"][:5]
