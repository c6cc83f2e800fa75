"""Writing retention tables as XLSX: a template for archivists and filled tables for the demo.

The template is what an archivist fills in, prints and submits for approval: a title block
(归档范围和保管期限表, 编制单位, 编制日期, 审批人, 审批日期) above the table, one example row, and a
page setup for A4 landscape, fitted to the width, with the header row repeated on every page and
page numbers. The loader finds the header row below the title block and names a forgotten example
row (R-EXAMPLE-ROW). The drop-down lists live on a hidden, protected second sheet (代码表) so they
are not limited by Excel's 255 characters for inline lists and are not edited by accident; the
loader reads only the first sheet, so they never become rules. Every choice offered in a
drop-down is a spelling the loader accepts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from retention.table import COLUMNS, EXAMPLE_MARK
from retention.tabular import column_letter
from schemas.model import MATTER_TYPES

TABLE_SHEET = "归档范围和保管期限表"
LISTS_SHEET = "代码表"

HEADER_HELP: Mapping[str, str] = {
    "事项编码": "政务服务事项编码（4–64 位字母、数字或连字符）。填写后本行只适用于该事项；"
    "与事项类型都不填的行是默认规则。",
    "事项名称": "事项名称，仅供阅读，不参与匹配。",
    "事项类型": "事项类型代码或名称，如 01 或 行政许可。未填事项编码时按事项类型匹配。",
    "实施机构": "实施机构全称。与事项类型同填时，只适用于该机构的该类事项。",
    "材料类别": "申报 / 过程 / 结果 / 全部（空白 = 全部）。申报、过程、结果只能与事项编码同用，对该类材料另作规定。",
    "归档范围": "归档 或 不归档（必填）。",
    "保管期限": "永久 / 30年 / 10年（也可写 Y / D30 / D10）。归档的行必填。",
    "门类代码": "档号中的门类代码，A–Z 和 0–9，1–8 位；空白 = WS（文书）。",
    "机构问题代码": "档号中的机构（问题）代码，A–Z 和 0–9，1–8 位；可空。",
    "生效日期": "本行自该日（含）起适用，如 2026-01-01；空白 = 一直有效。按办结日期判断。",
    "失效日期": "本行至该日（不含）止适用；必须晚于生效日期；空白 = 长期有效。",
    "依据": "规定依据，如文件名称和条款，写入归档信息包。",
}

_LISTS: Mapping[str, tuple[str, ...]] = {
    "事项类型": tuple(f"{code} {name}" for code, name in MATTER_TYPES.items()),
    "材料类别": ("全部", "申报", "过程", "结果"),
    "归档范围": ("归档", "不归档"),
    "保管期限": ("永久", "30年", "10年"),
}
_WIDTHS = {"事项编码": 22, "事项名称": 30, "事项类型": 14, "实施机构": 28, "依据": 36}
# The title block: (row, column, label) of each field the archivist fills in beside its label.
TITLE = "归档范围和保管期限表"
_FIELDS = ((2, 1, "编制单位："), (2, 7, "编制日期："), (3, 1, "审批人："), (3, 7, "审批日期："))
TEMPLATE_HEADER_ROW = 5
EXAMPLE_ROW: Mapping[str, Any] = {
    "事项编码": "330106-XK-0001",
    "事项名称": f"{EXAMPLE_MARK}食品经营许可（请替换或删除本行）",
    "事项类型": "01 行政许可",
    "材料类别": "全部",
    "归档范围": "归档",
    "保管期限": "30年",
    "门类代码": "WS",
    "生效日期": date(2026, 1, 1),
    "依据": "《政务服务电子文件归档和电子档案管理规范》",
}


def _prepare(headers: Sequence[str], header_row: int = 1) -> Any:
    """A workbook whose first sheet has the headers (in `header_row`), their comments and the
    drop-downs for the rows below."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = TABLE_SHEET
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for i, header in enumerate(headers):
        cell = ws.cell(row=header_row, column=i + 1, value=header)
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        if header in HEADER_HELP:
            comment = Comment(HEADER_HELP[header], "guidang")
            comment.width, comment.height = 320, 110
            cell.comment = comment
        ws.column_dimensions[column_letter(i)].width = _WIDTHS.get(header, 12)
    ws.freeze_panes = f"A{header_row + 1}"

    lists = wb.create_sheet(LISTS_SHEET)
    lists.sheet_state = "hidden"
    lists.protection.sheet = True  # the choices are the loader's spellings: not edited by accident
    for j, (name, choices) in enumerate(_LISTS.items()):
        letter = column_letter(j)
        lists.cell(row=1, column=j + 1, value=f"{name}选项")
        for k, choice in enumerate(choices):
            lists.cell(row=k + 2, column=j + 1, value=choice)
        if name not in headers:
            continue
        target = column_letter(list(headers).index(name))
        dv = DataValidation(
            type="list",
            formula1=f"'{LISTS_SHEET}'!${letter}$2:${letter}${len(choices) + 1}",
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=name,
            error=f"请从下拉列表中选择{name}",
        )
        dv.add(f"{target}{header_row + 1}:{target}1048576")
        ws.add_data_validation(dv)
    return wb


def write_template(path: str | os.PathLike[str]) -> None:
    """The table for archivists to fill in and submit: the title block, standard headers with a
    comment explaining each, one example row, drop-downs for 事项类型, 材料类别, 归档范围 and 保管期限,
    and a print setup (A4 landscape, fitted to the width, header row on every page, page numbers)."""
    from openpyxl.styles import Alignment, Border, Font, Side

    headers = list(COLUMNS.values())
    row = TEMPLATE_HEADER_ROW
    wb = _prepare(headers, row)
    ws = wb[TABLE_SHEET]
    last = column_letter(len(headers) - 1)
    title = ws.cell(row=1, column=1, value=TITLE)
    title.font = Font(bold=True, size=16)
    for c in range(1, len(headers) + 1):  # centred across the table without merging cells
        ws.cell(row=1, column=c).alignment = Alignment(horizontal="centerContinuous", vertical="center")
    ws.row_dimensions[1].height = 30
    for r, c, label in _FIELDS:
        ws.cell(row=r, column=c, value=label).font = Font(bold=True)
    line = Side(style="thin")
    for c, header in enumerate(headers, start=1):
        value = EXAMPLE_ROW.get(header)
        cell = ws.cell(row=row + 1, column=c, value=value)
        cell.font = Font(italic=True, color="808080")
        if isinstance(value, date):
            cell.number_format = "yyyy-mm-dd"
        for r in (row, row + 1):
            ws.cell(row=r, column=c).border = Border(left=line, right=line, top=line, bottom=line)
    setup = ws.page_setup
    setup.orientation = ws.ORIENTATION_LANDSCAPE
    setup.paperSize = ws.PAPERSIZE_A4
    setup.fitToWidth, setup.fitToHeight = 1, 0  # as many pages down as the rules need
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{row}:{row}"
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.print_area = f"A1:{last}{max(ws.max_row, row + 30)}"
    wb.save(path)


def write_table_xlsx(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """A filled table with the standard Chinese headers; `rows` are keyed by those headers (missing
    keys are blank). Keys that are not standard headers become extra columns after the standard
    ones, in first-seen order (the loader warns about them), so a test can write a bad table too.
    Row i of `rows` lands on sheet row i + 2; a None row is a blank row."""
    headers = list(COLUMNS.values())
    for row in rows:
        for key in row or {}:
            if key not in headers:
                headers.append(key)
    wb = _prepare(headers)
    ws = wb[TABLE_SHEET]
    for r, row in enumerate(rows, start=2):
        if not row:
            continue
        for c, header in enumerate(headers, start=1):
            value = row.get(header)
            if value is not None:
                cell = ws.cell(row=r, column=c, value=value)
                if hasattr(value, "year") and hasattr(value, "month"):
                    cell.number_format = "yyyy-mm-dd"
    wb.save(path)
