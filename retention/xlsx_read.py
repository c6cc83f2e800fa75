"""Reading the first sheet of an XLSX as a `Tabular`: bounded first, then only typed values.

Only the first worksheet is read (a package records one row number, which must name one row);
another sheet that also has the table's header row gets a warning so nothing is silently skipped.
Before openpyxl parses anything, `retention.bounds` checks the declared sizes, the row count, cell
lengths and merged ranges. Cells are read with their formulas (`data_only=False`), never the cached
results: archivists type values, and a formula's result (an IF on TODAY(), a lookup into another
file) is not a rule anyone decided, so a formula cell is an error naming the cell and its formula.
A merged range in or below the header row is an error naming the range: Excel shows its one value
in every row it spans, but the file holds it in the first only, so the rows below would read as
blank (a merged 实施机构 would silently widen them to every agency).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from retention.bounds import LIMITS, Limits, Problem, first_sheet_member, scan_sheet, zip_problem
from retention.tabular import HeaderSpec, Place, Tabular, column_letter, find_header, header_like, unread
from schemas.errors import InvariantBroken
from schemas.findings import Finding, Severity


def _refused(place: Place, problem: Problem) -> Tabular:
    d = problem.details
    finding = place.finding(problem.code, problem.message, row=d.get("row"), column=None, **d)
    return Tabular(place, [], iter(()), True, [finding])


def _prescan(p: Path, place: Place, limits: Limits) -> tuple[Place, list[str], Tabular | None, int]:
    """(place with the first sheet's name, its merged ranges, a refusal or None, its row count), from
    the zip's directory and one streamed pass over the sheet: nothing is inflated past the limits."""
    with zipfile.ZipFile(p) as zf:
        if problem := zip_problem(zf, limits):
            return place, [], _refused(place, problem), 0
        found = first_sheet_member(zf)
        if found is None:
            return place, [], unread(place, f"{p} has no worksheet", letters=True, code="R-FILE-STRUCTURE"), 0
        member, title = found
        place = Place(place.file, title)
        with zf.open(member) as fh:
            scan = scan_sheet(fh, limits)
    if scan.problem is not None:
        return place, [], _refused(place, scan.problem), scan.rows
    return place, scan.merged, None, scan.rows


@contextmanager
def xlsx_tabular(p: Path, place: Place, spec: HeaderSpec, limits: Limits = LIMITS) -> Iterator[Tabular]:
    """The first sheet as a `Tabular`, or a `Tabular` with no rows and the finding that refuses it."""
    import openpyxl

    try:
        place, merged, refusal, rows_in_sheet = _prescan(p, place, limits)
        wb = None if refusal else openpyxl.load_workbook(p, read_only=True, data_only=False)
    except Exception as exc:  # a hostile file can make zipfile, lxml or openpyxl raise nearly anything
        yield unread(place, f"{p} is not a readable XLSX workbook: {type(exc).__name__}: {exc}", letters=True)
        return
    if wb is None:
        if refusal is None:
            raise InvariantBroken(f"{p}: no workbook and no reason why")
        yield refusal
        return
    try:
        ws = wb.worksheets[0]
        place = Place(place.file, ws.title)
        findings = _other_sheets(wb.worksheets, place, spec)
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # some writers record a wrong size; read what is really there
        header_texts: list[str] = []
        rows = _values(ws, place, findings, header_texts, limits)
        header_row, header, rest = find_header(rows, spec)
        header_texts.extend(str(v or "").strip() for v in header)
        findings.extend(_merge_findings(merged, header_row, header_texts, place))
        if not any(header_texts):
            message = f"row {header_row} must be the header row but it is empty"
            findings.append(place.finding("R-FILE-STRUCTURE", message, row=header_row, column=None))
            yield Tabular(place, [], iter(()), True, findings)
            return
        yield Tabular(place, header, rest, True, findings, header_row, rows_in_sheet)
    finally:
        wb.close()


def _values(
    ws: Any, place: Place, findings: list[Finding], header: list[str], limits: Limits
) -> Iterator[tuple[int, list[Any]]]:
    """(row number, values) of a sheet; a row with a formula cell or an over-long cell gives an error
    per cell and is left out, so it is not also reported as a blank or wrong value. Any failure of
    the file mid-way (a member that does not inflate to its declared size) ends the rows with a
    finding; so does a row past the limit that the scan could not see."""
    try:
        for row_no, cells in enumerate(ws.iter_rows(), start=1):
            if row_no > limits.rows:
                message = f"the sheet has more than {limits.rows:,} rows; a retention table is far smaller: split it"
                findings.append(place.finding("R-FILE-TOO-LARGE", message, row=None, column=None))
                return
            values: list[Any] = []
            bad = False
            for i, cell in enumerate(cells):
                value = cell.value
                if getattr(cell, "data_type", None) == "f":
                    bad = True
                    findings.append(_formula_finding(place, row_no, i, value, header))
                elif isinstance(value, str) and len(value) > limits.cell_chars:
                    bad = True
                    findings.append(_long_finding(place, row_no, i, header, limits))
                values.append(value)
            if not bad:
                yield row_no, values
    except Exception as exc:  # see xlsx_tabular: the promise is a finding, never a traceback
        message = f"the workbook cannot be read past this point: {type(exc).__name__}: {exc}"
        findings.append(place.finding("R-FILE-UNREADABLE", message, row=None, column=None))


def _formula_finding(place: Place, row: int, index: int, value: Any, header: Sequence[str]) -> Finding:
    ref = f"{column_letter(index)}{row}"
    formula = getattr(value, "text", None) or str(value)
    column = header[index] if index < len(header) and header[index] else None
    return place.finding(
        "R-CELL-FORMULA",
        f"cell {ref} holds the formula {formula}; type the value itself (a formula's result is not read)",
        row=row,
        column=column,
        value=formula,
        letter=column_letter(index),
        cell=ref,
        formula=formula,
    )


def _long_finding(place: Place, row: int, index: int, header: Sequence[str], limits: Limits) -> Finding:
    ref = f"{column_letter(index)}{row}"
    return place.finding(
        "R-CELL-TOO-LONG",
        f"cell {ref} holds more than {limits.cell_chars} characters, more than Excel allows in a cell",
        row=row,
        column=header[index] if index < len(header) and header[index] else None,
        letter=column_letter(index),
        cell=ref,
    )


def _merge_findings(merged: Sequence[str], header_row: int, header: Sequence[str], place: Place) -> list[Finding]:
    """Merged ranges in or below the header row; a merged title above the table is only layout."""
    from openpyxl.utils import range_boundaries

    findings = []
    for ref in merged:
        try:
            min_col, min_row, _, max_row = range_boundaries(ref)
        except (TypeError, ValueError):
            continue
        if max_row is None or max_row < header_row:
            continue
        index = (min_col or 1) - 1
        findings.append(
            place.finding(
                "R-CELL-MERGED",
                f"cells {ref} are merged: the value stands in {ref.split(':')[0]} only and the other cells read "
                "as blank; unmerge them and type the value in every row",
                row=min_row,
                column=header[index] if index < len(header) and header[index] else None,
                letter=column_letter(index),
                range=ref,
            )
        )
    return findings


def _other_sheets(sheets: Sequence[Any], place: Place, spec: HeaderSpec) -> list[Finding]:
    """A warning for each later sheet that also has the table's header row, which is not read."""
    lookup = spec.lookup()
    findings = []
    for other in sheets[1:]:
        rows = other.iter_rows(min_row=1, max_row=10, values_only=True)
        row_no = next((n for n, values in enumerate(rows, start=1) if header_like(values, lookup)), None)
        if row_no is not None:
            findings.append(
                Place(place.file, other.title).finding(
                    "R-SHEET-IGNORED",
                    f"sheet {other.title!r} also has the table's header row, but only the first sheet "
                    f"({place.sheet!r}) is read; move its rows there",
                    row=row_no,
                    column=None,
                    severity=Severity.WARNING,
                )
            )
    return findings
