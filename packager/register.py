"""A register on demand (`guidang audit register`): 移交与接收登记表 and 目录 of a night or a batch, as a
printable A4 HTML page and as an XLSX workbook, with the ledger's totals beside the repository's.

Pure rendering from plain values (custody/register_gather.py gathers them from the ledger and the repository):
the 目录 lists the packages in 档号 order, the 登记表 sums them, the 核对 block states what the
repository holds for the same packages and whether the two agree, and the ledger checkpoint links the
paper to the chain (`audit verify` checks the same seq and hash). Every text cell is masked, and in
the workbook written as a string cell, so no value can become a live formula.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packager.transfer import DIGEST_ALGORITHMS, TransferRow
from schemas.anchor import Checkpoint, readme_line
from schemas.masking import shown_text

PERIOD_LABELS = {"Y": "永久", "D30": "30年", "D10": "10年"}
CATALOGUE_HEADERS = ("顺序号", "档号", "责任者", "题名", "日期", "保管期限", "页数", "文件数", "字节数", "批次号")


@dataclass(frozen=True, slots=True)
class Totals:
    packages: int
    files: int
    bytes: int
    pages: int | None = None  # the repository's pages are not counted (that would mean parsing every PDF)


@dataclass
class RegisterData:
    title: str  # e.g. "2026-03-01 夜间归档" or "批次 Z109-20260301-ab12cd34"
    fonds: str  # 全宗 code and name
    rows: list[TransferRow]
    batches: dict[str, str]  # 档号 → batch id ("" when not in a batch yet)
    ledger: Totals
    repository: Totals
    anchors: list[Checkpoint] = field(default_factory=list)
    generated_at: str = ""
    problems: list[str] = field(default_factory=list)  # package by package, where the two differ

    @property
    def agrees(self) -> bool:
        return (self.ledger.packages, self.ledger.files, self.ledger.bytes) == (
            self.repository.packages, self.repository.files, self.repository.bytes) and not self.problems


def _catalogue(data: RegisterData) -> list[list[Any]]:
    return [
        [i, r.archival_code, r.responsible, r.title, r.date, PERIOD_LABELS.get(r.period, r.period), r.pages,
         r.file_count, r.bytes, data.batches.get(r.archival_code, "")]
        for i, r in enumerate(data.rows, start=1)
    ]


def _summary(data: RegisterData) -> list[tuple[str, str]]:
    t, repo = data.ledger, data.repository
    cells = [
        ("交接工作名称", f"{data.fonds} 电子档案移交（{data.title}）"),
        ("内容描述", f"政务服务事项办件归档信息包 {t.packages} 件"),
        ("移交电子档案数量", f"{t.packages} 件（电子文件 {t.files} 个，{t.pages or 0} 页）"),
        ("移交数据量", f"{t.bytes / 1_000_000_000:.3f} GB（{t.bytes} 字节，计各件所含文档）"),
        ("摘要算法", "、".join(DIGEST_ALGORITHMS)),
        ("存储库核对", f"存储库实有 {repo.packages} 件（含完成标记），文档 {repo.files} 个，{repo.bytes} 字节："
                   + ("与账本一致" if data.agrees else "与账本不一致")),
    ]
    cells += [("账本检查点", readme_line(a).split("：", 1)[1]) for a in data.anchors]
    cells.append(("生成时间", data.generated_at))
    return cells


# The 登记表 prints on portrait A4; the 目录 starts on its own landscape A4 pages (a named @page), its
# columns sized to what they hold: 档号 and 批次号 whole on one line, 责任者 in at most two lines, the
# 题名 taking the rest. About 20 rows a page: a night of 240 件 prints on about 12 pages.
REGISTER_CSS = """
@page { size: A4 portrait; margin: 15mm 12mm 16mm 12mm;
  @bottom-center { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font-size: 9pt; } }
@page catalogue { size: A4 landscape; margin: 12mm 12mm 14mm 12mm; }
body { font-family: "SimSun", "Songti SC", "WenQuanYi Micro Hei", serif; font-size: 10.5pt; margin: 0; }
h1 { font-size: 16pt; text-align: center; margin: 0 0 4mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #000; padding: 2px 4px; text-align: left; vertical-align: top; }
thead { display: table-header-group; }
tfoot { display: table-row-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
.summary td { word-break: break-all; }
.signatures { break-inside: avoid; page-break-inside: avoid; margin-top: 6mm; }
.signatures td { height: 12mm; width: 35%; }
section.catalogue { page: catalogue; break-before: page; }
.listing { table-layout: fixed; font-size: 8.5pt; }
.listing th, .listing td { padding: 1px 3px; line-height: 1.3; }
.listing .code, .listing .num { white-space: nowrap; }
.listing .num { text-align: right; }
.listing col.seq { width: 12mm; } .listing col.code { width: 45mm; } .listing col.who { width: 33mm; }
.listing col.date { width: 15mm; } .listing col.period { width: 13mm; } .listing col.pages { width: 10mm; }
.listing col.files { width: 11mm; } .listing col.bytes { width: 19mm; } .listing col.batch { width: 39mm; }
"""
CATALOGUE_COLUMNS = ("seq", "code", "who", "title", "date", "period", "pages", "files", "bytes", "batch")


def write_html(data: RegisterData, path: Path) -> None:
    e = html.escape

    def cell(v: Any, cls: str = "") -> str:
        attr = f' class="{cls}"' if cls else ""
        return f"<td{attr}>{e(shown_text(str(v)))}</td>"

    summary = "\n".join(f"<tr><th>{e(k)}</th>{cell(v)}</tr>" for k, v in _summary(data))
    numeric = {0, 6, 7, 8}
    listing = "\n".join(
        "<tr>" + "".join(cell(v, "num" if j in numeric else ("code" if j in (1, 9) else ""))
                         for j, v in enumerate(row)) + "</tr>"
        for row in _catalogue(data)
    )
    problems = "".join(f"<li>{e(shown_text(p))}</li>" for p in data.problems)
    t = data.ledger
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>电子档案移交与接收登记表 {e(data.title)}</title>
<style>{REGISTER_CSS}</style></head>
<body><h1>电子档案移交与接收登记表</h1>
<p>全宗：{e(data.fonds)}　{e(data.title)}</p>
<table class="summary">
{summary}
</table>
{f'<h2>不一致</h2><ul class="problems">{problems}</ul>' if problems else ''}
<table class="signatures">
<tr><th></th><th>移交单位</th><th>接收单位</th></tr>
<tr><th>单位名称</th><td>{e(data.fonds)}</td><td></td></tr>
<tr><th>移交人 / 接收人（签名）</th><td></td><td></td></tr>
<tr><th>审核人（签名）</th><td></td><td></td></tr>
<tr><th>日期</th><td></td><td></td></tr>
</table>
<section class="catalogue">
<h2>目录</h2>
<table class="listing">
<colgroup>{''.join(f'<col class="{c}">' for c in CATALOGUE_COLUMNS)}</colgroup>
<thead><tr>{''.join(f'<th>{h}</th>' for h in CATALOGUE_HEADERS)}</tr></thead>
<tbody>
{listing}
</tbody>
<tfoot><tr><th colspan="6">合计 {t.packages} 件</th><th class="num">{t.pages or 0}</th>
<th class="num">{t.files}</th><th class="num">{t.bytes}</th><th></th></tr></tfoot>
</table>
</section>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def _text(ws: Any, row: int, column: int, value: Any) -> None:
    c = ws.cell(row=row, column=column)
    if isinstance(value, bool) or not isinstance(value, int):
        c.value = shown_text("" if value is None else str(value))
        c.data_type = "s"  # never a formula, whatever the text starts with
    else:
        c.value = value


def write_xlsx(data: RegisterData, path: Path) -> None:
    """Two sheets, each printing on A4: 登记表 (portrait, with the signature block) and 目录
    (landscape, its header row repeated on every page, fitted to the page width)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side

    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    wb = Workbook()
    ws = wb.active
    ws.title = "登记表"
    _text(ws, 1, 1, "电子档案移交与接收登记表")
    ws.cell(row=1, column=1).font = Font(bold=True, size=14)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=3)
    r = 2
    for k, v in [*_summary(data), *(("不一致", p) for p in data.problems)]:
        _text(ws, r, 1, k)
        _text(ws, r, 2, v)
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=3)
        r += 1
    r += 1
    for values in (("", "移交单位", "接收单位"), ("单位名称", data.fonds, ""), ("移交人 / 接收人（签名）", "", ""),
                   ("审核人（签名）", "", ""), ("日期", "", "")):
        for j, v in enumerate(values, start=1):
            _text(ws, r, j, v)
            ws.cell(row=r, column=j).border = box
        r += 1
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 45
    ws.column_dimensions["C"].width = 30
    for row in ws.iter_rows(min_row=2):
        for c in row:
            c.alignment = Alignment(wrap_text=True, vertical="top")
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True

    cat = wb.create_sheet("目录")
    for j, h in enumerate(CATALOGUE_HEADERS, start=1):
        _text(cat, 1, j, h)
        cat.cell(row=1, column=j).font = Font(bold=True)
    rows = _catalogue(data)
    for i, values in enumerate(rows, start=2):
        for j, v in enumerate(values, start=1):
            _text(cat, i, j, v)
    t = data.ledger
    last = len(rows) + 2
    for j, v in ((1, "合计"), (2, f"{t.packages} 件"), (7, t.pages or 0), (8, t.files), (9, t.bytes)):
        _text(cat, last, j, v)
        cat.cell(row=last, column=j).font = Font(bold=True)
    for letter, width in zip("ABCDEFGHIJ", (7, 28, 22, 40, 10, 9, 7, 7, 12, 24), strict=True):
        cat.column_dimensions[letter].width = width
    cat.print_title_rows = "1:1"
    cat.freeze_panes = "A2"
    cat.page_setup.paperSize = cat.PAPERSIZE_A4
    cat.page_setup.orientation = "landscape"
    cat.page_setup.fitToWidth = 1
    cat.page_setup.fitToHeight = 0
    cat.sheet_properties.pageSetUpPr.fitToPage = True
    wb.save(path)


def catalogue_rows(data: RegisterData) -> Sequence[dict[str, Any]]:
    """The 目录 as dicts (for `--json`)."""
    return [dict(zip(CATALOGUE_HEADERS, row, strict=True)) for row in _catalogue(data)]
