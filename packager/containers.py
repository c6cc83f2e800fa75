"""Container formats (容器格式) identified by what they contain, not by their first bytes.

A DOCX, an XLSX, an ODT, an EPUB and an OFD all begin with the same four ZIP bytes, and a DOC, an
XLS, a PPT and a Kingsoft WPS file with the same eight OLE2 bytes; FIDO is run without its container
signatures (packager/format_id.py), so by bytes alone PRONOM answers "ZIP Format" or "OLE2
Compound Document" for all of them. Here the container's own directory decides: the ODF/EPUB
`mimetype` entry, the OOXML `[Content_Types].xml` main part, OFD's `OFD.xml`, the OLE2 streams
(WordDocument, Workbook, PowerPoint Document, EncryptedPackage). Every read is bounded: the
central directory or the OLE2 directory and at most `PART_LIMIT` bytes of any part.

Kingsoft WPS Office (金山 WPS) writes its .wps/.et/.dps files as OLE2 or OOXML containers of the
Word, Excel and PowerPoint kinds; PRONOM registers no format for them, so they are named by the
family their name claims and carry no PUID.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import olefile

from packager.format_id import PronomMatch, pronom_entry
from packager.formats import FormatInfo, identify

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PART_LIMIT = 256 * 1024  # the most read of any one part ([Content_Types].xml, manifest.xml, content.xml)
ENTRY_LIMIT = 200_000  # a ZIP listing more entries than this is not opened further

_ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": "ODT",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "application/vnd.oasis.opendocument.presentation": "ODP",
    "application/vnd.oasis.opendocument.graphics": "ODG",
    "application/epub+zip": "EPUB",
}
# PRONOM's PUIDs per ODF version (ODF 1.0, 1.1, 1.2, 1.3).
_ODF_PUIDS = {
    "ODT": {"1.0": "fmt/136", "1.1": "fmt/290", "1.2": "fmt/291", "1.3": "fmt/1756"},
    "ODS": {"1.0": "fmt/137", "1.1": "fmt/294", "1.2": "fmt/295", "1.3": "fmt/1755"},
    "ODP": {"1.0": "fmt/138", "1.1": "fmt/292", "1.2": "fmt/293", "1.3": "fmt/1754"},
    "ODG": {"1.0": "fmt/139", "1.1": "fmt/296", "1.2": "fmt/297", "1.3": "fmt/1753"},
}
_OOXML_MAIN = (
    ("wordprocessingml.document.main", "DOCX", "fmt/412"),
    ("wordprocessingml.template.main", "DOCX", "fmt/412"),
    ("spreadsheetml.sheet.main", "XLSX", "fmt/214"),
    ("spreadsheetml.template.main", "XLSX", "fmt/214"),
    ("presentationml.presentation.main", "PPTX", "fmt/215"),
    ("presentationml.slideshow.main", "PPTX", "fmt/215"),
)
_OLE_STREAMS = (("WordDocument", "DOC", "fmt/40"), ("Workbook", "XLS", "fmt/61"), ("Book", "XLS", "fmt/59"),
                ("PowerPoint Document", "PPT", "fmt/126"))
# Kingsoft WPS Office's own extensions, by the family they hold.
_KINGSOFT = {"wps": "WPS", "wpt": "WPS", "et": "ET", "ett": "ET", "dps": "DPS", "dpt": "DPS"}
_KINGSOFT_FAMILY = {"WPS": ("DOC", "DOCX"), "ET": ("XLS", "XLSX"), "DPS": ("PPT", "PPTX")}
KINGSOFT_NAMES = {"WPS": "Kingsoft WPS Writer document (金山文字)",
                  "ET": "Kingsoft WPS Spreadsheets workbook (金山表格)",
                  "DPS": "Kingsoft WPS Presentation (金山演示)"}


@dataclass(frozen=True, slots=True)
class ContainerId:
    """What a ZIP or OLE2 container holds. `puid` is PRONOM's identifier where PRONOM has one;
    `converts_as` is the extension LibreOffice should see (a .wps name would select MS Works)."""

    name: str  # short format name: DOCX, ODT, OFD, ZIP, DOC, OLE2, ENCRYPTED-OFFICE, WPS, …
    puid: str | None = None
    version: str | None = None
    converts_as: str | None = None


def identify_container(path: Path, head: bytes) -> ContainerId | None:
    """The container format of the file whose first bytes are `head`; None when it is not a ZIP
    or OLE2 file, or its directory does not open (then the first bytes and the name decide, and
    the format's own inspection or the conversion says what is broken)."""
    if head.startswith(ZIP_MAGIC):
        found = _zip(path)
    elif head.startswith(OLE_MAGIC):
        found = _ole(path)
    else:
        return None
    if found is None:
        return None
    return _kingsoft(found, PurePosixPath(path.name).suffix.lower().lstrip("."))


def _kingsoft(found: ContainerId, ext: str) -> ContainerId:
    family = _KINGSOFT.get(ext)
    if family is None or found.name not in _KINGSOFT_FAMILY[family]:
        return found
    return ContainerId(family, None, None, found.converts_as)


def _read(zf: zipfile.ZipFile, name: str) -> bytes:
    with zf.open(name) as fh:
        return fh.read(PART_LIMIT)


def _zip(path: Path) -> ContainerId | None:
    plain = ContainerId("ZIP", "x-fmt/263", None, None)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if len(names) > ENTRY_LIMIT:
                return plain
            listed = set(names)
            if "mimetype" in listed:
                kind = _ODF_TYPES.get(_read(zf, "mimetype").decode("ascii", "replace").strip())
                if kind == "EPUB":
                    return ContainerId("EPUB", "fmt/483", None, None)
                if kind is not None:
                    version = _odf_version(zf, listed)
                    return ContainerId(kind, _ODF_PUIDS[kind].get(version or ""), version, kind.lower())
            if "[Content_Types].xml" in listed:
                types = _read(zf, "[Content_Types].xml").decode("utf-8", "replace")
                for marker, kind, puid in _OOXML_MAIN:
                    if marker in types:
                        return ContainerId(kind, puid, None, kind.lower())
            if "OFD.xml" in listed:
                return ContainerId("OFD")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
            ValueError):
        return None
    return plain


def _odf_version(zf: zipfile.ZipFile, listed: set[str]) -> str | None:
    for part in ("META-INF/manifest.xml", "content.xml"):
        if part in listed:
            found = re.search(rb'(?:manifest|office):version="([0-9.]+)"', _read(zf, part))
            if found:
                return found.group(1).decode()
    return None


def _ole(path: Path) -> ContainerId | None:
    plain = ContainerId("OLE2", "fmt/111", None, None)
    try:
        with olefile.OleFileIO(str(path)) as ole:
            if ole.exists("EncryptedPackage"):  # an OOXML file encrypted with a password
                return ContainerId("ENCRYPTED-OFFICE", "fmt/494", None, None)
            for stream, kind, puid in _OLE_STREAMS:
                if ole.exists(stream):
                    version = None
                    if kind == "DOC":
                        with ole.openstream(stream) as fh:
                            fib = fh.read(4)
                        # nFib: 0x00C1 and later is Word 97-2003; below it Word 6.0/95
                        if len(fib) == 4 and int.from_bytes(fib[2:4], "little") < 0x00C1:
                            puid, version = "fmt/39", "6.0/95"
                        else:
                            version = "97-2003"
                    return ContainerId(kind, puid, version, kind.lower())
    except (OSError, EOFError, ValueError, IndexError, TypeError, NotImplementedError, RuntimeError):
        return None
    return plain


def with_container(pronom: PronomMatch | None, container: ContainerId | None) -> PronomMatch | None:
    """The PRONOM entry 元数据 records: the container's format where PRONOM registers it (a DOCX
    is fmt/412, not the ZIP x-fmt/263 its bytes match), else the byte match."""
    if container is None or container.puid is None:
        return pronom
    entry = pronom_entry(container.puid)
    if entry is None:
        return pronom
    return replace(entry, version=container.version or entry.version)


def identify_document(path: Path, head: bytes, name: str,
                      declared_media_type: str | None) -> tuple[FormatInfo, ContainerId | None]:
    """The document's format from its first bytes, its container's directory and, to break ties,
    its name: what staging records and what the package check compares with it."""
    container = identify_container(path, head)
    return identify(head, name, declared_media_type, container.name if container else None), container
