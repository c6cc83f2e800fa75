"""A tabular file (XLSX, CSV or YAML) as a header row and numbered rows, with findings.

The retention table and the 事项目录 (catalogue) are both read through this model, so both get the
same rules. The header row is the first of the first few rows that reads as one (a title block may
stand above it, as in the printed template), else row 1; rows are numbered as Excel shows them, CSV
records likewise, and YAML item i (0-based) is row i + 2, the row it would have in a sheet, so one
table in any of the three formats gives the same rows. Blank rows are skipped but still counted.
Opening the files and the bounds they must keep are `retention.files`, `retention.xlsx_read` and
`retention.bounds`; a file that cannot be read is a finding, never an exception.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from retention.table import fold_width
from schemas.findings import Finding, Severity

HEADER_SCAN = 10  # rows searched for the header row: room for a title block above the table


@dataclass(frozen=True, slots=True)
class Cell:
    """One value as read: `column` is the header as the file spells it, `letter` its Excel column."""

    column: str
    value: Any
    letter: str | None = None


@dataclass(frozen=True, slots=True)
class Place:
    """Which file and sheet findings belong to."""

    file: str
    sheet: str | None = None

    def where(self, row: int | None, column: str | None = None, letter: str | None = None) -> str:
        parts = [self.file]
        if self.sheet is not None:
            parts.append(f"sheet {self.sheet!r}")
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column {letter} ({column})" if letter else f"column {column}")
        return ", ".join(parts)

    def finding(
        self,
        code: str,
        message: str,
        *,
        row: int | None,
        column: str | None,
        value: Any = None,
        letter: str | None = None,
        severity: Severity = Severity.ERROR,
        **extra: Any,
    ) -> Finding:
        details: dict[str, Any] = {"sheet": self.sheet, "row": row, "column": column, "value": jsonable(value)}
        details.update(extra)
        return Finding(code, self.where(row, column, letter), message, severity, details)

    def cell_finding(
        self, code: str, message: str, *, row: int, cell: Cell, severity: Severity = Severity.ERROR
    ) -> Finding:
        """A finding about one cell as read: its header as the file spells it, its value, its letter."""
        return self.finding(
            code, message, row=row, column=cell.column, value=cell.value, letter=cell.letter, severity=severity
        )


def jsonable(value: Any) -> Any:
    """Cell values as JSON can carry them: dates as ISO text, anything odd as its text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def cell_text(value: Any) -> str:
    """A cell as text: Excel gives 1.0 for a typed 1 and ints for numeric codes."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True)
class HeaderSpec:
    """What a tabular file must look like: its columns, which are required, and which groups of
    columns need at least one member present."""

    aliases: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()

    def lookup(self) -> dict[str, str]:
        return {_header_key(a): f for f, names in self.aliases.items() for a in names}


def _header_key(text: str) -> str:
    return "".join(ch for ch in fold_width(text).lower() if ch not in " _-\t")


def column_letter(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 26 -> AA)."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


@dataclass(slots=True)
class Tabular:
    """An open table: its header row and an iterator of (row number, values) after it."""

    place: Place
    headers: list[Any]
    rows: Iterator[tuple[int, Sequence[Any]]]
    letters: bool  # whether Excel column letters mean something (XLSX, CSV) or not (YAML)
    # Grows while `rows` is read (a formula cell, a row past the limit): read it after the rows.
    findings: list[Finding] = field(default_factory=list)
    header_row: int = 1
    rows_in_file: int | None = None  # what a pre-scan counted, the header included: how far reading has to go


def map_headers(tab: Tabular, spec: HeaderSpec) -> tuple[dict[str, int], list[Finding]]:
    """Header cells -> {field: column index}, with findings for missing, doubled and unknown columns."""
    lookup = spec.lookup()
    columns: dict[str, int] = {}
    findings: list[Finding] = []
    for i, header in enumerate(tab.headers):
        text = cell_text(header).strip()
        letter = column_letter(i) if tab.letters else None
        if not text:
            continue
        fld = lookup.get(_header_key(text))
        if fld is None:
            findings.append(
                tab.place.finding(
                    "R-COLUMN-UNKNOWN",
                    f"column {text!r} is not a column of this table and is ignored "
                    f"(known: {', '.join(spec.aliases[f][0] for f in spec.aliases)})",
                    row=tab.header_row,
                    column=text,
                    value=text,
                    letter=letter,
                    severity=Severity.WARNING,
                )
            )
        elif fld in columns:
            first = cell_text(tab.headers[columns[fld]]).strip()
            findings.append(
                tab.place.finding(
                    "R-COLUMN-DUPLICATE",
                    f"column {text!r} repeats column {first!r}; keep one of them",
                    row=tab.header_row,
                    column=text,
                    value=text,
                    letter=letter,
                )
            )
        else:
            columns[fld] = i
    for fld in spec.required:
        if fld not in columns:
            findings.append(
                tab.place.finding(
                    "R-COLUMN-MISSING",
                    f"the header row has no {spec.aliases[fld][0]} column",
                    row=tab.header_row,
                    column=spec.aliases[fld][0],
                )
            )
    for group in spec.one_of:
        if not any(f in columns for f in group):
            names = "/".join(spec.aliases[f][0] for f in group)
            findings.append(
                tab.place.finding(
                    "R-COLUMN-MISSING",
                    f"the header row needs at least one of {names}",
                    row=tab.header_row,
                    column=names,
                )
            )
    return columns, findings


def iter_cells(
    tab: Tabular, columns: Mapping[str, int], unlabeled_code: str
) -> Iterator[tuple[int, dict[str, Cell], list[Finding]]]:
    """Non-blank rows as {field: Cell}; values under a blank header are reported once per column."""
    labeled = set(columns.values())
    header_texts = {i: cell_text(h).strip() for i, h in enumerate(tab.headers)}
    warned: set[int] = set()
    for row_no, values in tab.rows:
        if all(not cell_text(v).strip() for v in values):
            continue
        extra: list[Finding] = []
        for i, v in enumerate(values):
            if i in labeled or i in warned or header_texts.get(i) or not cell_text(v).strip():
                continue
            warned.add(i)
            letter = column_letter(i) if tab.letters else None
            extra.append(
                tab.place.finding(
                    unlabeled_code,
                    f"column {letter or i + 1} has values but no header; they are ignored",
                    row=row_no,
                    column=letter,
                    value=v,
                    letter=None,
                    severity=Severity.WARNING,
                )
            )
        cells = {
            fld: Cell(
                header_texts.get(i, fld),
                values[i] if i < len(values) else None,
                column_letter(i) if tab.letters else None,
            )
            for fld, i in columns.items()
        }
        yield row_no, cells, extra


def unread(place: Place, message: str, *, letters: bool, code: str = "R-FILE-UNREADABLE") -> Tabular:
    """A file that could not be read as a table: no header, no rows, one finding saying why."""
    return Tabular(place, [], iter(()), letters, [place.finding(code, message, row=None, column=None)])


def header_like(values: Sequence[Any], lookup: Mapping[str, str]) -> bool:
    """Whether a row reads as a header row: two or more cells are known column names. A title
    (归档范围和保管期限表) or a field line (编制单位：…) never is."""
    return sum(1 for v in values if (t := cell_text(v).strip()) and _header_key(t) in lookup) >= 2


def find_header(
    rows: Iterator[tuple[int, Sequence[Any]]], spec: HeaderSpec
) -> tuple[int, list[Any], Iterator[tuple[int, Sequence[Any]]]]:
    """(header row number, header, the rows after it). The header is the first of the first
    `HEADER_SCAN` rows that looks like one, so a title block above the table (as the printed
    template has) is skipped; when none does, row 1 is the header, as it always was, and the
    column findings say what is wrong with it."""
    lookup = spec.lookup()
    seen: list[tuple[int, Sequence[Any]]] = []
    for row_no, values in rows:
        if header_like(values, lookup):
            return row_no, list(values), rows
        seen.append((row_no, values))
        if len(seen) >= HEADER_SCAN:
            break
    if not seen:
        return 1, [], iter(())
    (row_no, values), rest = seen[0], seen[1:]
    return row_no, list(values), itertools.chain(rest, rows)


@contextmanager
def mappings_tabular(items: Sequence[Any], place: Place) -> Iterator[Tabular]:
    """Mappings (parsed YAML, rows built in code) as a sheet: the keys in first-seen order are the
    header row, item i is row i + 2; an item that is not a mapping is a finding, None a blank row."""
    headers: list[str] = []
    seen: set[str] = set()
    findings: list[Finding] = []
    for i, item in enumerate(items):
        if item is None:
            continue
        if not isinstance(item, Mapping):
            findings.append(
                place.finding(
                    "R-FILE-STRUCTURE",
                    f"item {i + 1} is not a mapping of column to value",
                    row=i + 2,
                    column=None,
                    value=item if isinstance(item, (str, int, float)) else None,
                )
            )
            continue
        for key in item:
            k = str(key)
            if k not in seen:
                seen.add(k)
                headers.append(k)

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for i, item in enumerate(items):
            if isinstance(item, Mapping):
                by_text = {str(k): v for k, v in item.items()}
                yield i + 2, [by_text.get(h) for h in headers]

    yield Tabular(place, list(headers), rows(), False, findings)
