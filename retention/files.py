"""Opening a table file by its suffix: XLSX (`retention.xlsx_read`), CSV, YAML; each within bounds.

CSV and YAML are checked before they are parsed, like XLSX: a CSV is counted and its fields
measured in one streaming pass (the csv module's own field limit would otherwise end the import
in a traceback), and YAML is read without anchors and aliases (a few lines of aliases expand to
gigabytes) from a file of bounded size. Every problem is a finding naming the file and its place.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from retention.bounds import LIMITS, Limits, NoAliasLoader, YamlAliasRefused
from retention.tabular import HeaderSpec, Place, Tabular, column_letter, find_header, mappings_tabular, unread
from retention.xlsx_read import xlsx_tabular
from schemas.findings import Finding, Severity

_BLOCK = 1 << 16


@contextmanager
def open_tabular(
    path: str | os.PathLike[str], spec: HeaderSpec, limits: Limits = LIMITS
) -> Iterator[Tabular]:
    """Open any supported file as a `Tabular`; problems opening it come back as findings with an
    empty table, so the caller's one code path reports them."""
    p = Path(path)
    place = Place(str(path))
    suffix = p.suffix.lower()
    if not p.is_file():
        yield unread(place, f"{path} does not exist or is not a file", letters=False)
    elif suffix in (".xlsx", ".xlsm"):
        with xlsx_tabular(p, place, spec, limits) as tab:
            yield tab
    elif suffix in (".csv", ".txt"):
        with _csv_tabular(p, place, spec, limits) as tab:
            yield tab
    elif suffix in (".yaml", ".yml"):
        with _yaml_tabular(p, place, limits) as tab:
            yield tab
    else:
        yield unread(
            place, f"{path}: unknown table format {suffix or '(no suffix)'!r}; use .xlsx, .csv or .yaml", letters=False
        )


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


def _csv_problem(p: Path, encoding: str, place: Place, limits: Limits) -> tuple[Finding | None, int]:
    """One streaming pass: too many records, a field longer than a cell may be, or a broken record;
    and how many records there are (what reading the rows will go through)."""
    row = 0
    try:
        with p.open("r", encoding=encoding, newline="") as fh:
            for row, record in enumerate(csv.reader(fh), start=1):
                if row > limits.rows:
                    message = f"the file has more than {limits.rows:,} rows; a retention table is far smaller: split it"
                    found = place.finding("R-FILE-TOO-LARGE", message, row=None, column=None, limit=limits.rows)
                    return found, row
                for i, value in enumerate(record):
                    if len(value) > limits.cell_chars:
                        return _too_long(place, row, i, limits), row
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            return _too_long(place, row + 1, None, limits), row
        return place.finding("R-FILE-STRUCTURE", f"{p} is not well-formed CSV: {exc}", row=row + 1, column=None), row
    return None, row


def _too_long(place: Place, row: int, index: int | None, limits: Limits) -> Finding:
    letter = column_letter(index) if index is not None else None
    what = f"cell {letter}{row}" if letter else f"a field of row {row}"
    return place.finding(
        "R-CELL-TOO-LONG",
        f"{what} holds more than {limits.cell_chars} characters, more than Excel allows in a cell",
        row=row,
        column=letter,
        cell=f"{letter}{row}" if letter else None,
    )


@contextmanager
def _csv_tabular(p: Path, place: Place, spec: HeaderSpec, limits: Limits) -> Iterator[Tabular]:
    encoding = detect_encoding(p)
    if encoding is None:
        yield unread(place, f"{p} is neither UTF-8 nor GB18030 text; save it as CSV UTF-8", letters=True)
        return
    problem, records = _csv_problem(p, encoding, place, limits)
    if problem:
        yield Tabular(place, [], iter(()), True, [problem])
        return
    with p.open("r", encoding=encoding, newline="") as fh:
        header_row, header, rows = find_header(enumerate(csv.reader(fh), start=1), spec)
        yield Tabular(place, list(header), rows, True, [], header_row, records)


@contextmanager
def _yaml_tabular(p: Path, place: Place, limits: Limits) -> Iterator[Tabular]:
    size = p.stat().st_size
    if size > limits.yaml_bytes:
        message = (
            f"the YAML file is {size / 2**20:,.0f} MB (limit {limits.yaml_bytes / 2**20:,.0f} MB); "
            "write a table that large as XLSX or CSV"
        )
        yield unread(place, message, letters=False, code="R-FILE-TOO-LARGE")
        return
    try:
        with p.open("r", encoding="utf-8-sig") as fh:
            data = yaml.load(fh, Loader=NoAliasLoader)  # a SafeLoader without aliases
    except YamlAliasRefused as exc:
        message = (
            f"line {exc.line}: YAML {exc.what} is not allowed in a retention table; "
            "write each value out (aliases can expand a small file to gigabytes)"
        )
        details = {"sheet": None, "row": None, "column": None, "value": None, "line": exc.line}
        refused = Finding("R-YAML-ALIAS", f"{place.file}, line {exc.line}", message, Severity.ERROR, details)
        yield Tabular(place, [], iter(()), False, [refused])
        return
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        yield unread(place, f"{p} is not valid UTF-8 YAML: {exc}", letters=False)
        return
    if isinstance(data, dict) and isinstance(data.get("rules"), list):
        data = data["rules"]
    if not isinstance(data, list):
        yield unread(
            place,
            "a YAML table must be a list of mappings (one per rule), or a mapping with a 'rules' list",
            letters=False,
            code="R-FILE-STRUCTURE",
        )
        return
    with mappings_tabular(data, place) as tab:
        yield tab
