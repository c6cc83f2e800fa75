"""Reading a retention table from XLSX, CSV or YAML into rules plus findings.

XLSX: only the first worksheet is read (a package records one row number, which must name one
row); another sheet whose row 1 is also a table header gets a warning so nothing is silently
skipped. Row 1 is the header row everywhere; rows are numbered as Excel shows them (header = 1),
CSV records likewise, and YAML item i (0-based) is row i + 2, the row it would have in a sheet, so
one table in any of the three formats gives the same rows and the same content hash. Blank rows
are skipped but still counted.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from retention.table import COLUMNS, RetentionTable, Rule, fold_width
from retention.validate import Cell, Place, cell_text, check_conflicts, rule_from_row
from schemas.findings import Finding, Severity

# field -> accepted spellings of its header (compared after folding width, case, spaces, _ and -).
TABLE_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "service_code": ("事项编码", "service_code", "事项代码"),
        "service_name": ("事项名称", "service_name"),
        "matter_type": ("事项类型", "matter_type"),
        "agency": ("实施机构", "agency"),
        "group": ("材料类别", "group", "document_group"),
        "scope": ("归档范围", "scope"),
        "period": ("保管期限", "retention_period", "period"),
        "category_code": ("门类代码", "category_code", "category"),
        "org_code": ("机构问题代码", "org_code"),
        "effective_date": ("生效日期", "effective_date"),
        "expiry_date": ("失效日期", "expiry_date"),
        "basis": ("依据", "basis"),
    }
)
_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class HeaderSpec:
    """What a tabular file must look like: its columns, which are required, and which groups of
    columns need at least one member present."""

    aliases: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()

    def lookup(self) -> dict[str, str]:
        return {_header_key(a): f for f, names in self.aliases.items() for a in names}


TABLE_SPEC = HeaderSpec(TABLE_ALIASES, required=("scope", "period"))


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


@dataclass(slots=True)
class LoadResult:
    """The rules read from one file and every finding about them; `table` holds only error-free rows."""

    table: RetentionTable
    findings: list[Finding]
    file: str
    sheet: str | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def report(self) -> ValidationReport:
        return ValidationReport(self.errors, self.warnings, len(self.table.rules))


@dataclass(slots=True)
class ValidationReport:
    """What `guidang retention validate` shows: every error and warning, and how many rules are good."""

    errors: list[Finding]
    warnings: list[Finding]
    rules: int

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self, *, with_codes: bool = False) -> dict[str, Any]:
        """{"errors": [{"sheet","row","column","value","message"}], "warnings": [...], "rules": n};
        `with_codes` adds each finding's "code" for callers that want to act on it."""

        def item(f: Finding) -> dict[str, Any]:
            d = {k: f.details.get(k) for k in ("sheet", "row", "column", "value")}
            d["message"] = f.message
            if with_codes:
                d["code"] = f.code
            return d

        return {
            "errors": [item(f) for f in self.errors],
            "warnings": [item(f) for f in self.warnings],
            "rules": self.rules,
        }


def load_table(path: str | os.PathLike[str], *, version: str | None = None) -> LoadResult:
    """Read and check a retention table file (.xlsx/.xlsm, .csv, .yaml/.yml) in one pass.

    Never raises for bad content: an unreadable file, a missing column or a wrong cell is a finding.
    """
    with open_tabular(path, TABLE_SPEC) as tab:
        return _finish(tab, version=version, source=str(path))


def validate_table(path: str | os.PathLike[str]) -> ValidationReport:
    """`load_table(path).report`: the JSON-able verdict on a table file."""
    return load_table(path).report


def load_records(
    rows: Sequence[Mapping[str, Any] | None], *, source: str = "<rows>", version: str | None = None
) -> LoadResult:
    """Check rows given as mappings (Chinese headers or English aliases as keys), as if they were a
    sheet: item i is row i + 2. What YAML loading uses, and handy for tables built in code."""
    with _mappings_tabular(rows, Place(source)) as tab:
        return _finish(tab, version=version, source=source)


def _finish(tab: Tabular, *, version: str | None, source: str) -> LoadResult:
    findings = list(tab.findings)
    rules: list[Rule] = []
    if tab.headers:
        rules, row_findings, headers = _read_rules(tab)
        findings.extend(row_findings)
        findings.extend(check_conflicts(rules, tab.place, headers))
    if not rules and not any(f.severity == Severity.ERROR for f in findings):
        findings.append(tab.place.finding("R-TABLE-EMPTY", "the table has no rules", row=None, column=None))
    findings.sort(key=lambda f: f.details.get("row") or 0)  # stable: a row's findings stay in column order
    return LoadResult(RetentionTable(rules, version=version, source=source), findings, source, tab.place.sheet)


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


def _read_rules(tab: Tabular) -> tuple[list[Rule], list[Finding], dict[str, str]]:
    columns, findings = map_headers(tab, TABLE_SPEC)
    headers = {fld: cell_text(tab.headers[i]).strip() for fld, i in columns.items()}
    rules: list[Rule] = []
    for row_no, cells, extra in iter_cells(tab, columns, "R-COLUMN-UNKNOWN"):
        findings.extend(extra)
        rule, row_findings = rule_from_row(cells, row=row_no, place=tab.place)
        findings.extend(row_findings)
        if rule is not None:
            rules.append(rule)
    return rules, findings, headers


@contextmanager
def open_tabular(path: str | os.PathLike[str], spec: HeaderSpec) -> Iterator[Tabular]:
    """Open any supported file as a `Tabular`; problems opening it come back as findings with an
    empty table, so the caller's one code path reports them."""
    p = Path(path)
    place = Place(str(path))
    suffix = p.suffix.lower()

    def unreadable(message: str) -> Tabular:
        return Tabular(
            place,
            [],
            iter(()),
            False,
            [place.finding("R-FILE-UNREADABLE", message, row=None, column=None)],
        )

    if not p.is_file():
        yield unreadable(f"{path} does not exist or is not a file")
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
            yield unreadable(f"{path} is not valid UTF-8 YAML: {exc}")
            return
        if isinstance(data, dict) and isinstance(data.get("rules"), list):
            data = data["rules"]
        if not isinstance(data, list):
            tab = Tabular(place, [], iter(()), False)
            tab.findings.append(
                place.finding(
                    "R-FILE-STRUCTURE",
                    "a YAML table must be a list of mappings (one per rule), or a mapping with a 'rules' list",
                    row=None,
                    column=None,
                )
            )
            yield tab
            return
        with _mappings_tabular(data, place) as tab:
            yield tab
    else:
        yield unreadable(f"{path}: unknown table format {suffix or '(no suffix)'!r}; use .xlsx, .csv or .yaml")


@contextmanager
def _xlsx_tabular(p: Path, place: Place, spec: HeaderSpec) -> Iterator[Tabular]:
    from zipfile import BadZipFile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except (BadZipFile, InvalidFileException, OSError, KeyError, ValueError) as exc:
        yield Tabular(
            place,
            [],
            iter(()),
            True,
            [place.finding("R-FILE-UNREADABLE", f"{p} is not a readable XLSX workbook: {exc}", row=None, column=None)],
        )
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
        yield Tabular(
            place,
            [],
            iter(()),
            True,
            [
                place.finding(
                    "R-FILE-UNREADABLE",
                    f"{p} is neither UTF-8 nor GB18030 text; save it as CSV UTF-8",
                    row=None,
                    column=None,
                )
            ],
        )
        return
    with p.open("r", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        yield Tabular(place, list(header), enumerate(reader, start=2), True)


@contextmanager
def _mappings_tabular(items: Sequence[Any], place: Place) -> Iterator[Tabular]:
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


__all__ = [
    "COLUMNS",
    "TABLE_ALIASES",
    "LoadResult",
    "ValidationReport",
    "load_records",
    "load_table",
    "validate_table",
]
