"""Reading a tabular file (XLSX, CSV or YAML) as a header row and numbered rows, with findings.

The retention table and the 事项目录 (catalogue) are both read through here, so both get the same
rules: XLSX: only the first worksheet is read (a package records one row number, which must name
one row); another sheet whose row 1 is also a header of the expected kind gets a warning so
nothing is silently skipped. Row 1 is the header row everywhere; rows are numbered as Excel shows
them (header = 1), CSV records likewise, and YAML item i (0-based) is row i + 2, the row it would
have in a sheet, so one table in any of the three formats gives the same rows. Blank rows are
skipped but still counted. A file that cannot be opened is a finding, never an exception.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from retention.table import fold_width
from schemas.findings import Finding, Severity

_BLOCK = 1 << 16


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
    findings: list[Finding] = field(default_factory=list)


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
                    row=1,
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
                    row=1,
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
                    row=1,
                    column=spec.aliases[fld][0],
                )
            )
    for group in spec.one_of:
        if not any(f in columns for f in group):
            names = "/".join(spec.aliases[f][0] for f in group)
            findings.append(
                tab.place.finding(
                    "R-COLUMN-MISSING", f"the header row needs at least one of {names}", row=1, column=names
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


def _unread(place: Place, message: str, *, letters: bool, code: str = "R-FILE-UNREADABLE") -> Tabular:
    """A file that could not be read as a table: no header, no rows, one finding saying why."""
    return Tabular(place, [], iter(()), letters, [place.finding(code, message, row=None, column=None)])


@contextmanager
def open_tabular(path: str | os.PathLike[str], spec: HeaderSpec) -> Iterator[Tabular]:
    """Open any supported file as a `Tabular`; problems opening it come back as findings with an
    empty table, so the caller's one code path reports them."""
    p = Path(path)
    place = Place(str(path))
    suffix = p.suffix.lower()
    if not p.is_file():
        yield _unread(place, f"{path} does not exist or is not a file", letters=False)
        return
    if suffix in (".xlsx", ".xlsm"):
        with _xlsx_tabular(p, place, spec) as tab:
            yield tab
    elif suffix in (".csv", ".txt"):
        with _csv_tabular(p, place) as tab:
            yield tab
    elif suffix in (".yaml", ".yml"):
        try:
            with p.open("r", encoding="utf-8-sig") as fh:
                data = yaml.safe_load(fh)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            yield _unread(place, f"{path} is not valid UTF-8 YAML: {exc}", letters=False)
            return
        if isinstance(data, dict) and isinstance(data.get("rules"), list):
            data = data["rules"]
        if not isinstance(data, list):
            yield _unread(
                place,
                "a YAML table must be a list of mappings (one per rule), or a mapping with a 'rules' list",
                letters=False,
                code="R-FILE-STRUCTURE",
            )
            return
        with mappings_tabular(data, place) as tab:
            yield tab
    else:
        yield _unread(
            place, f"{path}: unknown table format {suffix or '(no suffix)'!r}; use .xlsx, .csv or .yaml", letters=False
        )


@contextmanager
def _xlsx_tabular(p: Path, place: Place, spec: HeaderSpec) -> Iterator[Tabular]:
    from zipfile import BadZipFile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except (BadZipFile, InvalidFileException, OSError, KeyError, ValueError) as exc:
        yield _unread(place, f"{p} is not a readable XLSX workbook: {exc}", letters=True)
        return
    try:
        sheets = wb.worksheets
        ws = sheets[0]
        place = Place(place.file, ws.title)
        findings: list[Finding] = []
        lookup = spec.lookup()
        for other in sheets[1:]:
            first = next(other.iter_rows(min_row=1, max_row=1, values_only=True), ())
            known = sum(1 for v in first if v is not None and _header_key(cell_text(v)) in lookup)
            if known >= 2:
                findings.append(
                    Place(place.file, other.title).finding(
                        "R-SHEET-IGNORED",
                        f"sheet {other.title!r} also has the table's header row, but only the first sheet "
                        f"({ws.title!r}) is read; move its rows there",
                        row=1,
                        column=None,
                        severity=Severity.WARNING,
                    )
                )
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()  # some writers record a wrong size; read what is really there
        rows = ws.iter_rows(values_only=True)
        header = list(next(rows, ()))
        if not any(cell_text(v).strip() for v in header):
            findings.append(
                place.finding("R-FILE-STRUCTURE", "row 1 must be the header row but it is empty", row=1, column=None)
            )
            yield Tabular(place, [], iter(()), True, findings)
            return
        yield Tabular(place, header, enumerate(rows, start=2), True, findings)
    finally:
        wb.close()


def detect_encoding(p: Path) -> str | None:
    """UTF-8 with BOM, UTF-8, else GB18030 (what Excel on a Chinese Windows saves); None if neither
    decodes. Reads in blocks, never the whole file at once."""
    with p.open("rb") as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with p.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(_BLOCK), b""):
                    decoder.decode(block)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    return None


@contextmanager
def _csv_tabular(p: Path, place: Place) -> Iterator[Tabular]:
    encoding = detect_encoding(p)
    if encoding is None:
        yield _unread(place, f"{p} is neither UTF-8 nor GB18030 text; save it as CSV UTF-8", letters=True)
        return
    with p.open("r", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        yield Tabular(place, list(header), enumerate(reader, start=2), True)


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
