"""Writing retention tables as XLSX: an empty template for archivists and filled tables for the demo.

The drop-down lists live on a hidden second sheet (代码表) so they are not limited by Excel's 255
characters for inline lists; the loader reads only the first sheet, so they never become rules.
Every choice offered in a drop-down is a spelling the loader accepts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from retention.table import COLUMNS
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


def _prepare(headers: Sequence[str]) -> Any:
    """A workbook whose first sheet has the headers, their comments and the drop-downs."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = TABLE_SHEET
    ws.append(list(headers))
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for i, header in enumerate(headers):
        cell = ws.cell(row=1, column=i + 1)
        cell.font = bold
        cell.fill = fill
        if header in HEADER_HELP:
            comment = Comment(HEADER_HELP[header], "guidang")
            comment.width, comment.height = 320, 110
            cell.comment = comment
        ws.column_dimensions[column_letter(i)].width = _WIDTHS.get(header, 12)
    ws.freeze_panes = "A2"

    lists = wb.create_sheet(LISTS_SHEET)
    lists.sheet_state = "hidden"
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
        dv.add(f"{target}2:{target}1048576")
        ws.add_data_validation(dv)
    return wb


def write_template(path: str | os.PathLike[str]) -> None:
    """An empty table for archivists: standard headers, a comment explaining each, drop-downs for
    事项类型, 材料类别, 归档范围 and 保管期限."""
    wb = _prepare(list(COLUMNS.values()))
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
