"""A retention table is read only as typed values within bounds (formula
cells, merged cells, zip bombs, over-long cells, too many rows and YAML aliases are findings that
name their place, found quickly and with little memory), and the template prints as a table an
archivist can submit and still reads back as a table."""

from __future__ import annotations

import csv
import shutil
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from retention import COLUMNS, load_table, validate_table, write_table_xlsx, write_template
from retention.template import LISTS_SHEET, TABLE_SHEET

HEADER = list(COLUMNS.values())
GOOD = {"事项编码": "330106-XK-0001", "事项类型": "01", "归档范围": "归档", "保管期限": "30年"}


def _workbook(path: Path, rows: list[dict]) -> tuple[Path, openpyxl.Workbook]:
    """A table written with openpyxl directly (header in row 1), for the loader to read."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "表"
    ws.append(HEADER)
    for row in rows:
        ws.append([row.get(h) for h in HEADER])
    return path, wb


def _table(path: Path) -> Path:
    write_table_xlsx(path, [GOOD])
    return path


def _letter(header: str) -> str:
    return openpyxl.utils.get_column_letter(HEADER.index(header) + 1)


def _codes(findings) -> list[str]:
    return [f.code for f in findings]


def _errors(path: Path):
    """The errors of loading `path`, with how long it took and the peak of Python memory. The time is
    this process's CPU time over a load without tracemalloc (which makes every allocation several
    times dearer): what the load costs, which tests running beside it on the machine (pytest-xdist)
    do not lengthen as they lengthen its wall time. The peak is taken from a second, traced load."""
    start = time.process_time()
    untraced = load_table(path)
    elapsed = time.process_time() - start
    tracemalloc.start()
    try:
        result = load_table(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert [e.code for e in untraced.errors] == [e.code for e in result.errors]
    return result.errors, elapsed, peak


def _with_sheet(src: Path, dst: Path, chunks: Iterator[bytes]) -> Path:
    """`src` with its first sheet's XML replaced by `chunks`, streamed into the zip (never in memory)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info in zin.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                with zout.open(info.filename, "w", force_zip64=True) as out:
                    for chunk in chunks:
                        out.write(chunk)
            else:
                zout.writestr(info, zin.read(info.filename))
    return dst


def _sheet_xml(rows: Iterator[bytes]) -> Iterator[bytes]:
    ns = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    yield b'<?xml version="1.0" encoding="UTF-8"?><worksheet ' + ns + b"><sheetData>"
    header = "".join(f'<c t="inlineStr"><is><t>{h}</t></is></c>' for h in HEADER)
    yield f'<row r="1">{header}</row>'.encode()
    yield from rows
    yield b"</sheetData></worksheet>"


def _rows(n: int, start: int = 2) -> Iterator[bytes]:
    cells = '<c t="inlineStr"><is><t>{t}</t></is></c>'
    for r in range(start, start + n):
        values = [f"330106-ZZ-{r:07d}", "", "01", "", "", "归档", "30年"]
        yield f'<row r="{r}">{"".join(cells.format(t=v) for v in values)}</row>'.encode()


# -- bounded and explicit input


def test_a_formula_cell_is_an_error_naming_the_cell_and_formula(tmp_path: Path) -> None:
    path, wb = _workbook(tmp_path / "formula.xlsx", [GOOD, {**GOOD, "事项编码": "330106-XK-0002"}])
    ws = wb.active
    period = f"{_letter('保管期限')}3"
    basis = f"{_letter('依据')}2"
    ws[period] = '=IF(TODAY()>DATE(2026,1,1),"永久","30年")'
    ws[basis] = '=CONCATENATE("第","3条")'
    wb.save(path)
    errors = load_table(path).errors
    assert _codes(errors) == ["R-CELL-FORMULA", "R-CELL-FORMULA"]
    by_cell = {f.details["cell"]: f for f in errors}
    assert set(by_cell) == {basis, period}
    assert "TODAY()" in by_cell[period].message and f"cell {period}" in by_cell[period].message
    assert by_cell[period].details["sheet"] == "表" and by_cell[period].details["row"] == 3
    assert not validate_table(path).ok


def test_a_merged_cell_is_an_error_naming_the_range(tmp_path: Path) -> None:
    agencies = {1: "某市市场监督管理局", 2: None, 3: None}
    rows = [{**GOOD, "事项编码": f"330106-XK-000{i}", "实施机构": a} for i, a in agencies.items()]
    path, wb = _workbook(tmp_path / "merged.xlsx", rows)
    agency = _letter("实施机构")
    wb.active.merge_cells(f"{agency}2:{agency}4")
    wb.save(path)
    errors = load_table(path).errors
    assert _codes(errors) == ["R-CELL-MERGED"]
    assert errors[0].details["range"] == f"{agency}2:{agency}4" and f"{agency}2:{agency}4" in errors[0].message


def test_a_zip_bomb_is_refused_before_parsing_quickly_and_with_little_memory(tmp_path: Path) -> None:
    small = _table(tmp_path / "small.xlsx")
    filler = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 2000
    bomb = _with_sheet(small, tmp_path / "bomb.xlsx", _sheet_xml(iter([filler] * (300 * 2**20 // len(filler)))))
    assert bomb.stat().st_size < 3 * 2**20  # a few MB that inflate to 300 MB
    errors, elapsed, peak = _errors(bomb)
    assert _codes(errors) == ["R-FILE-TOO-LARGE"]
    assert "MB" in errors[0].message and str(bomb) in errors[0].where
    assert elapsed < 1.0 and peak < 20 * 2**20


def test_a_zip_member_that_lies_about_its_size_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    src = _table(tmp_path / "t.xlsx")
    data = bytearray(src.read_bytes())
    # the central directory says sheet1.xml inflates to 10 bytes: zipfile stops there with a bad CRC
    name = b"xl/worksheets/sheet1.xml"
    at = data.rfind(b"PK\x01\x02", 0, data.rfind(name))
    data[at + 24 : at + 28] = (10).to_bytes(4, "little")
    lying = tmp_path / "lying.xlsx"
    lying.write_bytes(bytes(data))
    errors = load_table(lying).errors
    assert errors and errors[0].code == "R-FILE-UNREADABLE" and str(lying) in errors[0].where


def test_an_over_long_cell_is_refused_naming_the_cell(tmp_path: Path) -> None:
    # written as XML: openpyxl itself cuts what it writes at 32,767 characters, other writers do not
    basis = _letter("依据")
    long_row = '<row r="3"><c r="A3" t="inlineStr"><is><t>330106-XK-0002</t></is></c>' + "".join(
        f'<c r="{_letter(h)}3" t="inlineStr"><is><t>{v}</t></is></c>'
        for h, v in (("事项类型", "01"), ("归档范围", "归档"), ("保管期限", "30年"), ("依据", "条" * 40_000))
    ) + "</row>"
    small = _table(tmp_path / "small.xlsx")
    path = _with_sheet(small, tmp_path / "long.xlsx", _sheet_xml(iter([*_rows(1), long_row.encode()])))
    errors, elapsed, _ = _errors(path)
    assert elapsed < 2.0
    assert _codes(errors) == ["R-CELL-TOO-LONG"]
    assert errors[0].details["cell"] == f"{basis}3" and "32767" in errors[0].message


def test_an_over_long_csv_field_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerow([GOOD.get(h, "") for h in HEADER])
        w.writerow([GOOD.get(h, "x" * 200_000 if h == "依据" else "") for h in HEADER])
    errors = load_table(path).errors
    assert _codes(errors) == ["R-CELL-TOO-LONG"] and errors[0].details["row"] == 3


def test_too_many_rows_are_refused_before_parsing(tmp_path: Path) -> None:
    small = _table(tmp_path / "small.xlsx")
    big = _with_sheet(small, tmp_path / "rows.xlsx", _sheet_xml(_rows(200_001)))
    errors, elapsed, peak = _errors(big)
    assert _codes(errors) == ["R-FILE-TOO-LARGE"]
    assert "200000" in errors[0].message.replace(",", "")
    assert elapsed < 10 and peak < 50 * 2**20


@pytest.mark.parametrize("number", ["200001", "9876543210", "1" + "0" * 5000])
def test_a_row_numbered_past_the_limit_is_refused_however_long_its_number(tmp_path: Path, number: str) -> None:
    # openpyxl would fill every row up to the number; one row is enough to ask for billions
    small = _table(tmp_path / "small.xlsx")
    last = next(_rows(1, start=3)).replace(b'r="3"', f'r="{number}"'.encode())
    far = _with_sheet(small, tmp_path / "far.xlsx", _sheet_xml(iter([next(_rows(1)), last])))
    errors, elapsed, _ = _errors(far)
    assert _codes(errors) == ["R-FILE-TOO-LARGE"] and elapsed < 2.0


def test_a_row_number_with_leading_zeros_is_its_value(tmp_path: Path) -> None:
    small = _table(tmp_path / "small.xlsx")
    rows = [next(_rows(1)), next(_rows(1, start=3)).replace(b'r="3"', b'r="0000000003"')]
    errors, _, _ = _errors(_with_sheet(small, tmp_path / "zeros.xlsx", _sheet_xml(iter(rows))))
    assert "R-FILE-TOO-LARGE" not in _codes(errors)


def test_too_many_csv_rows_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for i in range(200_001):
            w.writerow([f"330106-ZZ-{i:07d}", "", "01", "", "", "归档", "30年"])
    errors = load_table(path).errors
    assert _codes(errors) == ["R-FILE-TOO-LARGE"]


def test_a_yaml_alias_bomb_is_refused_quickly_naming_the_line(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    lines.append("rules:")
    lines.append("  - {事项类型: '01', 归档范围: 归档, 保管期限: 永久, 依据: *i}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    start = time.process_time()  # CPU time, as `_errors` takes it
    errors = load_table(path).errors
    assert time.process_time() - start < 1.0
    assert _codes(errors) == ["R-YAML-ALIAS"]
    assert errors[0].details["line"] == 1 and "line 1" in errors[0].where


def test_plain_yaml_and_existing_workbooks_still_read(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("rules:\n  - {事项类型: '01', 归档范围: 归档, 保管期限: 永久}\n", encoding="utf-8")
    assert load_table(path).ok and len(load_table(path).table.rules) == 1
    xlsx = _table(tmp_path / "t.xlsx")
    assert load_table(xlsx).findings == [] and load_table(xlsx).table.rules[0].row == 2


# -- the printed template


def test_the_template_prints_as_a_submittable_a4_landscape_table(tmp_path: Path) -> None:
    path = tmp_path / "模板.xlsx"
    write_template(path)
    wb = openpyxl.load_workbook(path)
    ws = wb[TABLE_SHEET]
    assert wb.worksheets[0].title == TABLE_SHEET
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    assert ws.page_setup.fitToHeight == 0
    texts = {str(c.value) for row in ws.iter_rows(max_row=6) for c in row if c.value is not None}
    assert "归档范围和保管期限表" in texts
    for label in ("编制单位", "编制日期", "审批人", "审批日期"):
        assert any(t.startswith(label) for t in texts), label
    header_row = next(r for r in range(1, 10) if [c.value for c in ws[r]][: len(HEADER)] == HEADER)
    assert header_row > 1
    assert ws.print_title_rows.replace("$", "") == f"{header_row}:{header_row}"
    example = [c.value for c in ws[header_row + 1]][: len(HEADER)]
    assert example[HEADER.index("归档范围")] == "归档" and example[HEADER.index("保管期限")]
    assert ws.oddFooter.center.text and "&P" in ws.oddFooter.center.text
    lists = wb[LISTS_SHEET]
    assert lists.protection.sheet and lists.sheet_state == "hidden"
    # still a table: the header is found below the title block, the example row is one rule
    report = validate_table(path)
    assert report.errors == [] and report.rules == 1
    loaded = load_table(path)
    assert loaded.table.rules[0].row == header_row + 1
    assert [f.code for f in loaded.warnings] == ["R-EXAMPLE-ROW"]


def test_the_filled_template_validates_and_drop_downs_cover_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "模板.xlsx"
    write_template(path)
    wb = openpyxl.load_workbook(path)
    ws = wb[TABLE_SHEET]
    header_row = int(ws.print_title_rows.replace("$", "").split(":")[0])
    for dv in ws.data_validations.dataValidation:
        assert str(dv.sqref).split(":")[0].endswith(str(header_row + 1))
    row = header_row + 1
    ws.cell(row=row, column=HEADER.index("事项名称") + 1, value="食品经营许可")
    ws.cell(row=row + 1, column=HEADER.index("事项类型") + 1, value="02 行政处罚")
    ws.cell(row=row + 1, column=HEADER.index("归档范围") + 1, value="不归档")
    filled = tmp_path / "filled.xlsx"
    wb.save(filled)
    loaded = load_table(filled)
    assert loaded.findings == [] and [r.row for r in loaded.table.rules] == [row, row + 1]
    copy = tmp_path / "copy.xlsx"
    shutil.copy(filled, copy)
    assert validate_table(copy).ok


@pytest.mark.parametrize("merge", ["A1:L1"])
def test_a_merged_title_above_the_header_is_not_an_error(tmp_path: Path, merge: str) -> None:
    path = tmp_path / "t.xlsx"
    write_template(path)
    wb = openpyxl.load_workbook(path)
    wb[TABLE_SHEET].merge_cells(merge)
    wb.save(path)
    assert load_table(path).errors == []
