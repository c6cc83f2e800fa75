"""What a table file may be before it is parsed: sizes, rows, cell lengths, merged ranges, YAML aliases.

Retention tables come from archivists' desks and sometimes from elsewhere; a hostile or broken file
must be refused cheaply, before openpyxl or PyYAML builds anything from it. An XLSX is a zip, so
the declared sizes of its members are known from the central directory without inflating a byte
(and zipfile never inflates past a member's declared size: a member that lies fails its CRC).
The first sheet's XML is then streamed once to count rows and collect merged ranges, which
openpyxl's read-only mode does not expose. Nothing here knows about
rules or findings: problems come back as `Problem`s and `retention.xlsx_read` turns them into
findings with their place.
"""

from __future__ import annotations

import functools
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

import yaml

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_BLOCK = 1 << 20
_TAG_MAX = 1 << 16  # a row or mergeCell tag is far shorter; a longer partial tag is not kept
_PREFIX = rb"<(?:[A-Za-z_][\w.-]*:)?"  # spreadsheetml may be written with a namespace prefix
_ROW = re.compile(_PREFIX + rb"row(?=[\s/>])([^>]*)>")
_MERGE = re.compile(
    _PREFIX + rb"""mergeCell\b[^>]*?\bref\s*=\s*["']([A-Za-z]{1,3}\d{1,7}(?::[A-Za-z]{1,3}\d{1,7})?)["']"""
)


@dataclass(frozen=True, slots=True)
class Limits:
    """How big a table file may be. A real 归档范围和保管期限表 has hundreds to a few thousand rows;
    these leave room for a whole province's catalogue and stop a file built to exhaust the machine."""

    unpacked_bytes: int = 200 * 1024 * 1024  # sum of an XLSX's members, inflated
    rows: int = 200_000  # rows of the sheet or file, the header included
    cell_chars: int = 32_767  # what Excel itself allows in one cell
    yaml_bytes: int = 20 * 1024 * 1024  # YAML is parsed whole, so it is kept small


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a file is refused: a finding code, the message, and where (cell, range, line) if known."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SheetScan:
    """What one pass over a sheet's XML found: its rows, its merged ranges, or why it is refused."""

    rows: int = 0
    merged: list[str] = field(default_factory=list)
    problem: Problem | None = None


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:,.0f} MB"


def zip_problem(zf: zipfile.ZipFile, limits: Limits = LIMITS) -> Problem | None:
    """A workbook whose members would inflate past the limit, refused from the declared sizes alone."""
    total = sum(info.file_size for info in zf.infolist())
    if total > limits.unpacked_bytes:
        return Problem(
            "R-FILE-TOO-LARGE",
            f"the workbook inflates to {_mb(total)} (limit {_mb(limits.unpacked_bytes)}); "
            "a retention table is far smaller: save it again from Excel, or split it",
            {"unpacked_bytes": total, "limit": limits.unpacked_bytes},
        )
    return None


def first_sheet_member(zf: zipfile.ZipFile) -> tuple[str, str] | None:
    """(zip member, name) of the workbook's first sheet (the one that is read), from the package's
    relationships; None if the workbook does not say."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True)

    def rels(part: str) -> dict[str, tuple[str, str]]:
        name = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
        if name not in zf.namelist():
            return {}
        root = etree.fromstring(zf.read(name), parser)
        base = posixpath.dirname(part)
        out = {}
        for rel in root.iter(f"{_REL_NS}Relationship"):
            target = rel.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
            out[rel.get("Id", "")] = (rel.get("Type", ""), path)
        return out

    workbook = next((p for t, p in rels("").values() if t == _OFFICE_DOC), "xl/workbook.xml")
    if workbook not in zf.namelist():
        return None
    sheet = etree.fromstring(zf.read(workbook), parser).find(f"{NS}sheets/{NS}sheet")
    if sheet is None:
        return None
    member = rels(workbook).get(sheet.get(_R_ID, ""), ("", ""))[1]
    return (member, sheet.get("name", "")) if member in zf.namelist() else None


def scan_sheet(fh: IO[bytes], limits: Limits = LIMITS) -> SheetScan:
    """One streaming pass over a sheet's XML bytes: stops at the first row past the limit (by count
    or by row number, since openpyxl fills the gaps); merged ranges are listed (they sit after the
    rows). Tags are matched on the bytes, not parsed: markup `<` never occurs escaped in text, and
    this is ten times faster than building elements. Cell lengths are checked as cells are read."""
    scan = SheetScan()
    tail = b""
    while block := fh.read(_BLOCK):
        buf = tail + block
        cut = buf.rfind(b"<")  # a tag may be cut at the block's end: keep it for the next block
        if cut >= 0 and buf.find(b">", cut) < 0 and len(buf) - cut <= _TAG_MAX:
            done, tail = buf[:cut], buf[cut:]
        else:  # no partial tag (or one too long to be a row or merge, which are short)
            done, tail = buf, b""
        if _scan_block(done, scan, limits):
            return scan
    _scan_block(tail, scan, limits)
    return scan


def _scan_block(data: bytes, scan: SheetScan, limits: Limits) -> bool:
    """Count rows and collect merges in complete tags; True once the sheet is refused.

    Per row only its tag's attributes are taken (one small bytes object), and a row number is read
    only when it has at least as many digits as the limit, the only ones that can pass it. Building
    a match, a group and an int per row made a 200,000-row refusal take 1.6 s (11 s under
    tracemalloc); this takes 1.25 s (5 s)."""
    tags = _ROW.findall(data)  # the attributes of each row tag
    scan.rows += len(tags)
    numbers = _long_numbers(len(str(limits.rows))).findall(b" ".join(tags)) if tags else []
    if scan.rows > limits.rows or _past(numbers, limits.rows):
        scan.problem = Problem(
            "R-FILE-TOO-LARGE",
            f"the sheet has more than {limits.rows:,} rows; a retention table is far smaller: split it",
            {"limit": limits.rows},
        )
        return True
    if b"mergeCell" in data:  # merges sit after the rows, in the last block or two
        scan.merged.extend(m.group(1).decode("ascii") for m in _MERGE.finditer(data))
    return False


@functools.cache
def _long_numbers(digits: int) -> re.Pattern[bytes]:
    """Row numbers (`r="..."`) of at least `digits` digits, however many more."""
    return re.compile(rb"""\br\s*=\s*["'](\d{%d,})["']""" % digits)


def _past(numbers: list[bytes], limit: int) -> bool:
    """Whether a row number passes `limit` (openpyxl would fill the rows up to it); compared on the
    digits, so that a number of thousands of digits is not converted to an int."""
    width = len(str(limit))
    for n in numbers:
        n = n.lstrip(b"0")
        if len(n) > width or (len(n) == width and int(n) > limit):
            return True
    return False


class YamlAliasRefused(Exception):
    """A YAML anchor or alias; carries the 1-based line it is on."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(f"line {line}: {what}")
        self.line = line
        self.what = what


class NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases: a table is typed out, and an alias is how a few lines
    of YAML expand to gigabytes, so the first one is refused before anything is built."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise YamlAliasRefused(event.start_mark.line + 1, f"alias *{event.anchor}")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise YamlAliasRefused(event.start_mark.line + 1, f"anchor &{anchor}")
        return super().compose_node(parent, index)
