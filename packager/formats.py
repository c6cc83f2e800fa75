"""File-format identification for the package: what a document really is, and whether an archive
can keep it.

The format recorded in 元数据.xml comes from the file's own first bytes, not from the name or the
media type a source declared, because a source's declaration is exactly what an authenticity check
must not take on trust. The declared media type and the extension only break ties (an OFD is a ZIP
container; plain text has no signature) and name formats we do not recognise. When the first bytes
are positively another format than the name claims, `format_mismatch` says what they are, so that a
ZIP named .pdf is reported as a ZIP and not as a broken PDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from schemas.pickling import by_fields

# DA/T 47 / GB/T 18894 general-purpose (通用) formats for long-term keeping.
GENERAL_FORMATS: frozenset[str] = frozenset(
    {"PDF", "OFD", "XML", "TXT", "JPEG", "TIFF", "PNG", "JP2", "WAV", "MP3", "MP4"}
)

_MEDIA_TYPES: dict[str, str] = {
    "PDF": "application/pdf",
    "OFD": "application/ofd",
    "XML": "application/xml",
    "TXT": "text/plain",
    "JPEG": "image/jpeg",
    "TIFF": "image/tiff",
    "PNG": "image/png",
    "JP2": "image/jp2",
    "WAV": "audio/wav",
    "MP3": "audio/mpeg",
    "MP4": "video/mp4",
    "ZIP": "application/zip",
    "EXE": "application/x-msdownload",
    "DOC": "application/msword",
    "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "GIF": "image/gif",
    "HTML": "text/html",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "PPTX": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "ODT": "application/vnd.oasis.opendocument.text",
    "ODS": "application/vnd.oasis.opendocument.spreadsheet",
    "ODP": "application/vnd.oasis.opendocument.presentation",
    "ODG": "application/vnd.oasis.opendocument.graphics",
    "EPUB": "application/epub+zip",
    "XLS": "application/vnd.ms-excel",
    "PPT": "application/vnd.ms-powerpoint",
    "RTF": "application/rtf",
    "WPS": "application/kswps",
    "ET": "application/kset",
    "DPS": "application/ksdps",
    "OLE2": "application/x-ole-storage",
    "ENCRYPTED-OFFICE": "application/x-ole-storage",
    "ELF": "application/x-executable",
    "EMPTY": "application/x-empty",
}

# How a message names what a file's content is ("content is a ZIP archive, name says PDF").
_DESCRIPTIONS: dict[str, str] = {
    "PDF": "a PDF document", "OFD": "an OFD document", "XML": "an XML document", "TXT": "plain text",
    "JPEG": "a JPEG image", "TIFF": "a TIFF image", "PNG": "a PNG image", "JP2": "a JPEG 2000 image",
    "WAV": "a WAV recording", "MP3": "an MP3 recording", "MP4": "an MP4 video", "ZIP": "a ZIP archive",
    "EXE": "a Windows executable", "DOC": "a Word 97-2003 document", "OLE2": "an OLE compound file",
    "DOCX": "a DOCX document", "GIF": "a GIF image", "HTML": "an HTML page", "XLSX": "an XLSX workbook",
    "PPTX": "a PPTX presentation", "ODT": "an ODT document", "ODS": "an ODS spreadsheet",
    "ODP": "an ODP presentation", "EPUB": "an EPUB book", "XLS": "an Excel 97-2003 workbook",
    "PPT": "a PowerPoint 97-2003 presentation", "RTF": "a Rich Text document",
    "ELF": "an ELF executable", "EMPTY": "an empty file", "ENCRYPTED-OFFICE": "a password-protected Office file",
}
# Word-processing, spreadsheet and presentation formats: one of them named as another (a DOCX
# named .doc, a WPS file named .doc) is what its content says, not a mismatch; LibreOffice reads
# each by its content.
OFFICE_FORMATS = frozenset({"DOC", "DOCX", "XLS", "XLSX", "PPT", "PPTX", "ODT", "ODS", "ODP", "ODG", "RTF",
                            "WPS", "ET", "DPS", "OLE2"})
# Formats that are text: a file named .txt that holds one of them is still text, as it says.
_TEXT_FORMATS = frozenset({"TXT", "XML", "HTML"})

_BY_MEDIA_TYPE: dict[str, str] = {v: k for k, v in _MEDIA_TYPES.items()} | {
    "text/xml": "XML",
    "application/x-dosexec": "EXE",
    "application/x-msdos-program": "EXE",
    "application/vnd.microsoft.portable-executable": "EXE",
    "image/jpg": "JPEG",
    "audio/x-wav": "WAV",
}

_BY_EXTENSION: dict[str, str] = {
    "pdf": "PDF", "ofd": "OFD", "xml": "XML", "txt": "TXT", "jpg": "JPEG", "jpeg": "JPEG",
    "tif": "TIFF", "tiff": "TIFF", "png": "PNG", "jp2": "JP2", "wav": "WAV", "mp3": "MP3",
    "mp4": "MP4", "zip": "ZIP", "exe": "EXE", "dll": "EXE", "doc": "DOC", "docx": "DOCX", "gif": "GIF",
    "html": "HTML", "htm": "HTML", "xlsx": "XLSX", "pptx": "PPTX", "odt": "ODT", "ods": "ODS", "odp": "ODP",
    "odg": "ODG", "epub": "EPUB", "xls": "XLS", "ppt": "PPT", "rtf": "RTF", "wps": "WPS", "et": "ET",
    "dps": "DPS", "docm": "DOCX", "dotx": "DOCX", "xlsm": "XLSX", "pptm": "PPTX",
}

# Formats that are ZIP containers (packager/containers.py tells them apart by their directory).
_ZIP_BASED = frozenset({"OFD", "DOCX", "XLSX", "PPTX", "ODT", "ODS", "ODP", "ODG", "EPUB"})

# ISO 32000: a PDF's header may follow other bytes, within the first 1,024.
HEAD_SIZE = 1024


@by_fields
@dataclass(frozen=True, slots=True)
class FormatInfo:
    name: str  # e.g. "PDF"; the extension upper-cased (or "UNKNOWN") when not recognised
    media_type: str
    general: bool  # a general-purpose archival format (通用格式)


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "PDF"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return "JP2"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "WAV"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "MP3"
    if head[4:8] == b"ftyp":
        return "MP4"
    if head.startswith(b"MZ"):
        return "EXE"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "DOC"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP"
    if head.startswith(b"{\\rtf"):
        return "RTF"
    if head.startswith(b"\x7fELF"):
        return "ELF"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<?xml"):
        return "XML"
    if text[:14].lower() == b"<!doctype html" or text[:5].lower() == b"<html":
        return "HTML"  # what a web server answers instead of a document (an error page, a login form)
    return None


def identify(head: bytes, file_name: str, declared_media_type: str | None = None,
             container: str | None = None) -> FormatInfo:
    """The format of a file whose first bytes are `head` (at least HEAD_SIZE of them, if it has
    that many). `container` is what a ZIP or OLE2 container holds (packager/containers.py), which
    decides over the name; a plain ZIP named as a ZIP-based format (.ofd, .docx, …) is taken at
    its name. Signature-less
    text named .txt is resolved by the name. A file without a known signature is never given a
    general-purpose format it claims but does not carry (a ".pdf" that is not a PDF is UNKNOWN,
    unless its header follows other bytes within the first 1,024, as ISO 32000 allows); plain
    text, which has no signature, is TXT when it is named so and looks like text. An empty file
    is EMPTY: no format at all."""
    if not head:
        return FormatInfo(name="EMPTY", media_type=_MEDIA_TYPES["EMPTY"], general=False)
    ext = PurePosixPath(file_name).suffix.lower().lstrip(".")
    by_ext = _BY_EXTENSION.get(ext)
    by_type = _BY_MEDIA_TYPE.get((declared_media_type or "").split(";")[0].strip().lower())
    name = container or _sniff(head)
    if name is None and "PDF" in (by_ext, by_type) and b"%PDF-" in head[:HEAD_SIZE]:
        name = "PDF"
    if name == "ZIP" and (by_ext in _ZIP_BASED or by_type in _ZIP_BASED):
        # a ZIP whose directory names no format of its own, named as a ZIP-based one: taken at its
        # name, so that what is wrong with it is said by that format's inspection or conversion
        name = by_ext if by_ext in _ZIP_BASED else by_type
    if name == "HTML" and (by_ext or by_type) == "TXT":
        name = None  # markup in a file named .txt is text, as it says
    if name is None:
        claimed = by_ext or by_type
        if claimed == "TXT":
            name = "TXT" if _looks_like_text(head) else "UNKNOWN"
        elif claimed is not None and claimed not in GENERAL_FORMATS:
            name = claimed
        elif claimed is None and ext.isascii() and ext.isalnum():
            name = ext.upper()
        else:  # claims a format whose signature it does not carry
            name = "UNKNOWN"
    media_type = _MEDIA_TYPES.get(name, declared_media_type or "application/octet-stream")
    return FormatInfo(name=name, media_type=media_type, general=name in GENERAL_FORMATS)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sample is fine
        if exc.start < len(head) - 3:
            return False
    return not any(b < 9 or 13 < b < 32 for b in head)


def identify_file(path: Path, declared_media_type: str | None = None) -> FormatInfo:
    with path.open("rb") as fh:
        head = fh.read(HEAD_SIZE)
    return identify(head, path.name, declared_media_type)


def _claimed(file_name: str, declared_media_type: str | None) -> tuple[str, str] | None:
    """The format the name's extension claims, else the one the declared media type claims, with
    which of the two said so."""
    by_ext = _BY_EXTENSION.get(PurePosixPath(file_name).suffix.lower().lstrip("."))
    if by_ext is not None:
        return by_ext, "name"
    by_type = _BY_MEDIA_TYPE.get((declared_media_type or "").split(";")[0].strip().lower())
    return (by_type, "declared media type") if by_type is not None else None


def format_mismatch(head: bytes, file_name: str, declared_media_type: str | None = None,
                    container: str | None = None) -> str | None:
    """Why the content is not what the name (or, without a known extension, the declared media type)
    says, e.g. "content is a ZIP archive, name says PDF"; None when they agree, when nothing is
    claimed, or when the content carries no signature we know (a PDF claim then has to open as one).
    ZIP containers named .ofd/.docx and text formats named .txt are what they say, and so is one
    office format named as another (OFFICE_FORMATS)."""
    claim = _claimed(file_name, declared_media_type)
    actual = container or _sniff(head)
    if claim is None or actual is None:
        return None
    claimed, by = claim
    found = identify(head, file_name, declared_media_type, container).name
    if found == claimed or (claimed == "TXT" and found in _TEXT_FORMATS):
        return None
    if claimed in OFFICE_FORMATS and found in OFFICE_FORMATS:
        return None
    return f"content is {_DESCRIPTIONS.get(found, found)}, {by} says {claimed}"


def claims_general_format(head: bytes, file_name: str) -> bool:
    """Whether the name claims a general-purpose format (other than plain text, which has no
    signature) while the first bytes carry no signature we know: then PRONOM's identification
    decides whether the content is something else."""
    claimed = _BY_EXTENSION.get(PurePosixPath(file_name).suffix.lower().lstrip("."))
    return _sniff(head) is None and claimed in GENERAL_FORMATS and claimed != "TXT"


def is_pdf_claimed(file_name: str, declared_media_type: str | None) -> bool:
    """Whether the source says this is a PDF: such a file must open as one, whatever its bytes."""
    return (
        PurePosixPath(file_name).suffix.lower() == ".pdf"
        or (declared_media_type or "").split(";")[0].strip().lower() == "application/pdf"
    )
