"""PDF inspection with pypdf: does the file open, is it encrypted, does its page tree resolve, how
many pages, and does it carry active content.

Staging uses it to quarantine unreadable PDFs before they get a 档号, and the 四性检测 uses it again
on the package (可用性: content readable; 安全性: active content). The file is read through an
open handle, never loaded whole: pypdf seeks to the objects it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

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
    active_content: tuple[str, ...] = field(default_factory=tuple)  # sorted, e.g. "JavaScript (object 8)"

    @property
    def readable(self) -> bool:
        return self.error is None and not self.encrypted and bool(self.pages)


def inspect_pdf(path: Path) -> PdfInspection:
    with path.open("rb") as fh:
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
            active = _active_content(reader)
        except Exception as exc:
            return PdfInspection(pages=pages, error=f"objects do not resolve: {type(exc).__name__}: {exc}")
        return PdfInspection(pages=pages, active_content=active)


def _active_content(reader: PdfReader) -> tuple[str, ...]:
    """Walk every indirect object (including those in object streams) and the trailer, looking for
    JavaScript, Launch and similar actions and embedded files anywhere, not only where a viewer
    would look first: a name tree, an annotation, a form field or an orphan object all count."""
    found: set[str] = set()
    numbers: set[tuple[int, int]] = set()
    for generation, table in reader.xref.items():
        numbers.update((num, generation) for num in table)
    numbers.update((num, 0) for num in reader.xref_objStm)
    for num, generation in sorted(numbers):
        obj = reader.get_object(IndirectObject(num, generation, reader))
        _scan(obj, f"object {num}", found)
    _scan(reader.trailer, "trailer", found)
    return tuple(sorted(found))


def _scan(obj: object, where: str, found: set[str]) -> None:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, DictionaryObject):
            for key, value in item.items():
                if key in _ACTIVE_KEYS:
                    found.add(f"{_ACTIVE_KEYS[key]} ({where})")
                if key == "/S" and isinstance(value, NameObject) and value in _ACTIVE_ACTIONS:
                    found.add(f"{_ACTIVE_ACTIONS[value]} ({where})")
                if not isinstance(value, IndirectObject):
                    stack.append(value)
        elif isinstance(item, ArrayObject):
            stack.extend(v for v in item if not isinstance(v, IndirectObject))
