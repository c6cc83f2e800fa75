"""PDF inspection with pypdf: does the file open, is it encrypted (and how: restricted but opening
without a password, needing a password, or encrypted for certificates with the public-key security
handler), does its page tree resolve, how many pages, does it carry active content, and do its
pages' content streams parse.

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

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from schemas.pickling import by_fields

if TYPE_CHECKING:
    from pypdf import PdfReader

# pypdf, and cryptography, fontTools and Pillow, which it imports, are imported by the first PDF
# parsed (some 0.3 s and 25 MB), not by every process that imports the packager: the night's run
# process hands its documents to workers, whose server has imported them (night/worker_preload.py).

# The largest PDF that is parsed. A rebuilt cross-reference table holds the whole file (and pypdf
# caps each decoded stream at 75 MB), so this keeps one inspection well under 300 MB.
PDF_PARSE_LIMIT = 64 * 1024 * 1024
# ISO 32000: the header may follow other bytes, within the first 1,024.
PDF_HEADER_WINDOW = 1024
# The longest the walk over a PDF's objects may take; past it the PDF is not parsed entirely.
WALK_SECONDS = 120.0
# How much of the pages' content streams is parsed for syntax errors, per document.
CONTENT_BYTES = 4 * 1024 * 1024

# Keys and action types that make a PDF do something when opened or clicked.
_ACTIVE_KEYS = {"/JS": "JavaScript", "/JavaScript": "JavaScript", "/EmbeddedFiles": "embedded files",
                "/EmbeddedFile": "embedded file", "/RichMedia": "rich media"}
_ACTIVE_ACTIONS = {"/JavaScript": "JavaScript action", "/Launch": "Launch action",
                   "/ImportData": "ImportData action"}
# PDF permission bits (ISO 32000-1 table 22) an encrypting author can withhold.
_PERMISSIONS = {3: "printing", 4: "changing", 5: "copying text", 6: "annotating", 9: "filling forms",
                11: "assembling", 12: "high-quality printing"}


class _PerDocument(logging.Handler):
    """pypdf's warnings (it logs one for every object it repairs or skips, 22,115 for one hostile
    file) are collected for the document being inspected in this thread and reported once, in its
    inspection; outside an inspection they go to guidang's log at DEBUG. No bare pypdf line reaches
    the night's log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        collected: list[str] | None = getattr(self.local, "collected", None)
        message = record.getMessage()
        if collected is None:
            logging.getLogger("guidang.pypdf").debug("%s", message)
            return
        if len(collected) < 3:
            collected.append(message)
        self.local.count += 1
        if message.startswith("PdfReadError") and self.local.unread is None:
            self.local.unread = message  # an object pypdf gave up on: the PDF is not parsed entirely

    @contextlib.contextmanager
    def collecting(self) -> Iterator[_PerDocument]:
        self.local.collected, self.local.count, self.local.unread = [], 0, None
        try:
            yield self
        finally:
            self.local.collected = None


_WARNINGS = _PerDocument()
logging.getLogger("pypdf").addHandler(_WARNINGS)
logging.getLogger("pypdf").propagate = False


@by_fields
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
    encryption: str | None = None  # which kind of encryption, as a finding says it
    warnings: int = 0  # pypdf's warnings while reading this document
    first_warnings: tuple[str, ...] = ()
    content_errors: str | None = None  # syntax errors in the pages' content streams (the structure opens)

    @property
    def readable(self) -> bool:
        return self.error is None and not self.encrypted and bool(self.pages)

    @property
    def encryption_message(self) -> str:
        return f"PDF is encrypted: {self.encryption}" if self.encryption else "PDF is encrypted"

    @property
    def warning_note(self) -> str | None:
        """pypdf's warnings for this document as one line, None when there were none."""
        if not self.warnings:
            return None
        return f"pypdf reported {self.warnings:,} warning(s) reading this PDF (first: {'; '.join(self.first_warnings)})"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MiB"


@cache
def _reader_class() -> type[PdfReader]:
    from pypdf import PdfReader
    from pypdf.generic import DictionaryObject

    class _Reader(PdfReader):
        """PdfReader that records the security handler instead of refusing one it does not implement
        (the public-key handler, /Adobe.PubSec: "only Standard PDF encryption handler is available")."""

        security_handler: str | None = None

        def _handle_encryption(self, password: Any) -> None:
            entry = self.trailer.get("/Encrypt")
            entry = entry.get_object() if entry is not None else None
            handler = entry.get("/Filter") if isinstance(entry, DictionaryObject) else None
            self.security_handler = str(handler) if handler is not None else None
            if handler == "/Standard" and "/SubFilter" not in entry:
                super()._handle_encryption(password)

    return _Reader


def _encryption(reader: Any) -> str:
    """Which of the three kinds of encryption the PDF carries, in a finding's words."""
    handler = reader.security_handler
    if handler != "/Standard":
        kind = "public-key (certificate) security handler" if handler == "/Adobe.PubSec" else \
            f"security handler {handler or 'unnamed'}"
        return f"encrypted for certificates ({kind}): only the holder of a recipient's private key can open it"
    try:
        opened = reader.decrypt("")
    except Exception as exc:  # a damaged /Encrypt dictionary
        return f"Standard security handler, not readable ({type(exc).__name__}: {exc})"
    from pypdf import PasswordType

    if opened == PasswordType.NOT_DECRYPTED:
        return "a password is needed to open it (Standard security handler)"
    entry = reader.trailer["/Encrypt"].get_object()
    try:
        p = int(entry.get("/P", -1))
    except (TypeError, ValueError):
        p = -1
    withheld = [name for bit, name in _PERMISSIONS.items() if not p & (1 << (bit - 1))]
    return ("it opens without a password but restricts permissions"
            + (f" (withheld: {', '.join(withheld)})" if withheld else ""))


def inspect_pdf(path: Path, *, parse_limit: int | None = PDF_PARSE_LIMIT,
                held: BinaryIO | None = None) -> PdfInspection:
    """What pypdf finds in the file, or why it was not asked (no PDF header; above `parse_limit`
    bytes, None for no limit). `held`: the same bytes already in memory (staging's), read instead
    of the file. pypdf's warnings are counted for this document (PdfInspection.warnings); a PDF
    with objects pypdf could not read is not parsed entirely, which is an error, not a warning."""
    with _WARNINGS.collecting() as collected:
        found = _inspect(path, parse_limit, held)
        count, first, unread = collected.local.count, tuple(collected.local.collected), collected.local.unread
    if count:
        error = found.error
        if error is None and unread is not None:
            error = f"not parsed entirely: pypdf could not read some objects ({count:,} warning(s), first: {unread})"
        found = PdfInspection(pages=found.pages, encrypted=found.encrypted, error=error, too_large=found.too_large,
                              active_content=found.active_content, signature_objects=found.signature_objects,
                              encryption=found.encryption, warnings=count, first_warnings=first,
                              content_errors=found.content_errors)
    return found


def _inspect(path: Path, parse_limit: int | None, held: BinaryIO | None) -> PdfInspection:
    with held if held is not None else path.open("rb") as fh:
        if b"%PDF-" not in fh.read(PDF_HEADER_WINDOW):
            return PdfInspection(error=f"not a PDF: no %PDF- header in the first {PDF_HEADER_WINDOW:,} bytes")
        size = fh.seek(0, 2) if held is not None else path.stat().st_size
        if parse_limit is not None and size > parse_limit:
            return PdfInspection(too_large=True, error=(
                f"not parsed: {size:,} bytes ({_mib(size)}) is above the PDF parse limit of {_mib(parse_limit)}"))
        fh.seek(0)
        try:
            reader = _reader_class()(fh)
        except RecursionError:
            return PdfInspection(error="does not open: objects nested deeper than the parser's limit")
        except Exception as exc:  # pypdf raises many types for damaged files; all mean "does not open"
            return PdfInspection(error=f"does not open: {type(exc).__name__}: {exc}")
        try:
            if reader.is_encrypted:
                return PdfInspection(encrypted=True, encryption=_encryption(reader))
        except Exception as exc:
            return PdfInspection(error=f"does not open: {type(exc).__name__}: {exc}")
        try:
            pages = len(reader.pages)
            for page in reader.pages:  # resolve every page object, not just the count
                page.mediabox  # noqa: B018
        except RecursionError:
            return PdfInspection(error="page tree does not resolve: nested deeper than the parser's limit")
        except Exception as exc:
            return PdfInspection(error=f"page tree does not resolve: {type(exc).__name__}: {exc}")
        try:
            active, signature_objects = _active_content(reader)
        except RecursionError:
            return PdfInspection(pages=pages, error="objects do not resolve: nested deeper than the parser's limit")
        except Exception as exc:
            return PdfInspection(pages=pages, error=f"objects do not resolve: {type(exc).__name__}: {exc}")
        return PdfInspection(pages=pages, active_content=active, signature_objects=signature_objects,
                             content_errors=_content_errors(reader))


def _content_errors(reader: PdfReader) -> str | None:
    """Syntax errors in the pages' content streams (what draws each page), within CONTENT_BYTES of
    decoded content per document: the structure can open while a page cannot be drawn."""
    budget = CONTENT_BYTES
    bad: list[str] = []
    for number, page in enumerate(reader.pages, start=1):
        if budget <= 0:
            break
        before = _WARNINGS.local.count
        try:
            contents = page.get_contents()
            if contents is None:
                continue
            budget -= len(contents.get_data())
            contents.operations  # noqa: B018  (parses the stream)
        except Exception as exc:
            bad.append(f"page {number}: {type(exc).__name__}: {exc}")
            continue
        if _WARNINGS.local.count > before:
            bad.append(f"page {number}: {_WARNINGS.local.collected[-1] if _WARNINGS.local.collected else 'warning'}")
    if not bad:
        return None
    return "content streams have syntax errors: " + "; ".join(bad[:3]) + (f" (and {len(bad) - 3} more)"
                                                                           if len(bad) > 3 else "")


def _active_content(reader: PdfReader) -> tuple[tuple[str, ...], int]:
    """Walk every indirect object (including those in object streams) and the trailer, looking for
    JavaScript, Launch and similar actions and embedded files anywhere, not only where a viewer
    would look first: a name tree, an annotation, a form field or an orphan object all count."""
    from pypdf.generic import IndirectObject

    found: set[str] = set()
    signatures = [0]
    numbers: set[tuple[int, int]] = set()
    for generation, table in reader.xref.items():
        numbers.update((num, generation) for num in table)
    numbers.update((num, 0) for num in reader.xref_objStm)
    deadline = time.monotonic() + WALK_SECONDS

    def objects() -> Iterator[tuple[object, str]]:
        for num, generation in sorted(numbers):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the walk over {len(numbers):,} objects passed {WALK_SECONDS:g} s")
            yield reader.get_object(IndirectObject(num, generation, reader)), f"object {num}"
        yield reader.trailer, "trailer"

    _scan(objects(), found, signatures)
    return tuple(sorted(found)), signatures[0]


def _scan(objects: Iterator[tuple[object, str]], found: set[str], signatures: list[int]) -> None:
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    for obj, where in objects:
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
