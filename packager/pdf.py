"""PDF inspection with pypdf: does the file open, is it encrypted, does its page tree resolve, how
many pages, and does it carry active content.

Staging uses it to quarantine unreadable PDFs before they get a 档号, and the 四性检测 uses it again
on the package (可用性: content readable; 安全性: active content).

pypdf reads through an open handle and seeks to the objects it needs, but only while the
cross-reference table holds: when it does not (a damaged file, or a PDF header followed by
anything at all) pypdf rebuilds it by reading the whole file into memory, and the active-content
walk keeps every object it resolved: a large file named .pdf would take minutes and several times
its size in memory. So a
file is parsed only when it carries a PDF header in its first 1,024 bytes (checked without pypdf)
and is no larger than a parse limit (`PDF_PARSE_LIMIT`; a parse may hold two to three times the
file in memory at worst); a larger one is reported as too large: not parsed, never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

# The largest PDF that is parsed. A rebuilt cross-reference table holds the whole file (and pypdf
# caps each decoded stream at 75 MB), so this keeps one inspection well under 300 MB.
PDF_PARSE_LIMIT = 64 * 1024 * 1024
# ISO 32000: the header may follow other bytes, within the first 1,024.
PDF_HEADER_WINDOW = 1024

# Keys and action types that make a PDF do something when opened or clicked.
_ACTIVE_KEYS = {"/JS": "JavaScript", "/JavaScript": "JavaScript", "/EmbeddedFiles": "embedded files",
                "/EmbeddedFile": "embedded file", "/RichMedia": "rich media"}
_ACTIVE_ACTIONS = {"/JavaScript": "JavaScript action", "/Launch": "Launch action",
                   "/ImportData": "ImportData action"}


@dataclass(frozen=True, slots=True)
class PdfInspection:
    pages: int | None = None
    encrypted: bool = False
    error: str | None = None  # why the PDF did not open or its page tree did not resolve
    too_large: bool = False  # above the parse limit: not parsed (error says so)
    active_content: tuple[str, ...] = field(default_factory=tuple)  # sorted, e.g. "JavaScript (object 8)"
    # signature fields (/FT /Sig) and signature values (/ByteRange) the walk met: only a PDF with
    # one is handed to pyHanko (packager/signatures.py), which would otherwise parse every PDF again
    signature_objects: int = 0

    @property
    def readable(self) -> bool:
        return self.error is None and not self.encrypted and bool(self.pages)


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MiB"


def inspect_pdf(path: Path, *, parse_limit: int | None = PDF_PARSE_LIMIT,
                held: BinaryIO | None = None) -> PdfInspection:
    """What pypdf finds in the file, or why it was not asked (no PDF header; above `parse_limit`
    bytes, None for no limit). `held`: the same bytes already in memory (staging's), read instead
    of the file."""
    with held if held is not None else path.open("rb") as fh:
        if b"%PDF-" not in fh.read(PDF_HEADER_WINDOW):
            return PdfInspection(error=f"not a PDF: no %PDF- header in the first {PDF_HEADER_WINDOW:,} bytes")
        size = fh.seek(0, 2) if held is not None else path.stat().st_size
        if parse_limit is not None and size > parse_limit:
            return PdfInspection(too_large=True, error=(
                f"not parsed: {size:,} bytes ({_mib(size)}) is above the PDF parse limit of {_mib(parse_limit)}"))
        fh.seek(0)
        try:
            reader = PdfReader(fh)
        except Exception as exc:  # pypdf raises many types for damaged files; all mean "does not open"
            return PdfInspection(error=f"does not open: {type(exc).__name__}: {exc}")
        try:
            if reader.is_encrypted:
                return PdfInspection(encrypted=True)
        except Exception as exc:
            return PdfInspection(error=f"does not open: {type(exc).__name__}: {exc}")
        try:
            pages = len(reader.pages)
            for page in reader.pages:  # resolve every page object, not just the count
                page.mediabox  # noqa: B018
        except Exception as exc:
            return PdfInspection(error=f"page tree does not resolve: {type(exc).__name__}: {exc}")
        try:
            active, signature_objects = _active_content(reader)
        except Exception as exc:
            return PdfInspection(pages=pages, error=f"objects do not resolve: {type(exc).__name__}: {exc}")
        return PdfInspection(pages=pages, active_content=active, signature_objects=signature_objects)


def _active_content(reader: PdfReader) -> tuple[tuple[str, ...], int]:
    """Walk every indirect object (including those in object streams) and the trailer, looking for
    JavaScript, Launch and similar actions and embedded files anywhere, not only where a viewer
    would look first: a name tree, an annotation, a form field or an orphan object all count."""
    found: set[str] = set()
    signatures = [0]
    numbers: set[tuple[int, int]] = set()
    for generation, table in reader.xref.items():
        numbers.update((num, generation) for num in table)
    numbers.update((num, 0) for num in reader.xref_objStm)
    for num, generation in sorted(numbers):
        obj = reader.get_object(IndirectObject(num, generation, reader))
        _scan(obj, f"object {num}", found, signatures)
    _scan(reader.trailer, "trailer", found, signatures)
    return tuple(sorted(found)), signatures[0]


def _scan(obj: object, where: str, found: set[str], signatures: list[int]) -> None:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, DictionaryObject):
            if "/ByteRange" in item or item.get("/FT") == "/Sig":
                signatures[0] += 1
            for key, value in item.items():
                if key in _ACTIVE_KEYS:
                    found.add(f"{_ACTIVE_KEYS[key]} ({where})")
                if key == "/S" and isinstance(value, NameObject) and value in _ACTIVE_ACTIONS:
                    found.add(f"{_ACTIVE_ACTIONS[value]} ({where})")
                if not isinstance(value, IndirectObject):
                    stack.append(value)
        elif isinstance(item, ArrayObject):
            stack.extend(v for v in item if not isinstance(v, IndirectObject))
