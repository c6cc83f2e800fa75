"""A rendition's bytes made a function of the original's: what LibreOffice writes differently on
every run is settled to values the original decides.

Two conversions of one document by LibreOffice give the same pages, but not the same bytes: the
Info dictionary's CreationDate, the XMP CreateDate (PDF/A wants the two to agree, so both go), the
trailer's /ID and LibreOffice's /DocChecksum, and the header of the embedded sRGB output profile,
which carries the time the profile was made. A package is a pure function of its inputs: a night
killed and resumed rebuilds it, and must rebuild the same bytes the repository may already hold.
So the dates are removed (元数据's 格式转换 records when and with what the rendition was made), the
profile's date is set to a fixed one, and /ID is derived from the original's SHA-256. The PDF is
rewritten by pypdf, which keeps every object of the PDF/A structure (output intent, XMP, fonts).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

# ICC.1 header: dateTimeNumber at bytes 24-35 (year, month, day, hours, minutes, seconds; uint16 each)
_ICC_DATE = slice(24, 36)
_FIXED_ICC_DATE = bytes.fromhex("07d0 0001 0001 0000 0000 0000")  # 2000-01-01 00:00:00
_XMP_DATES = re.compile(rb"\s*<xmp:(CreateDate|ModifyDate|MetadataDate)>[^<]*</xmp:\1>")
_INFO_DATES = ("/CreationDate", "/ModDate")


class SettleError(Exception):
    """The rendition could not be read back to settle its bytes (the converter's output is broken)."""


def settle(path: Path, original_sha256: str) -> None:
    """Rewrite the PDF at `path` in place with its run-dependent bytes settled (see the module)."""
    # pypdf (with cryptography, fontTools and Pillow behind it) is imported by the first rendition,
    # not by every process that imports the packager: the run's own process never settles one
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, ByteStringObject, StreamObject

    try:
        reader = PdfReader(path)
        writer = PdfWriter(clone_from=reader)
        writer.pdf_header = reader.pdf_header  # PDF/A-2 wants %PDF-1.0 to 1.7; keep what LibreOffice wrote
    except Exception as exc:  # pypdf raises many types for a damaged file
        raise SettleError(f"the converter's PDF does not open: {type(exc).__name__}: {exc}") from exc
    info = writer.metadata
    if info is not None:
        writer.metadata = {k: v for k, v in info.items() if k not in _INFO_DATES}
    root = writer.root_object
    metadata = root.get("/Metadata")
    if metadata is not None and isinstance(metadata.get_object(), StreamObject):
        stream = metadata.get_object()
        stream.set_data(_XMP_DATES.sub(b"", stream.get_data()))
    for intent in root.get("/OutputIntents") or ():
        profile = intent.get_object().get("/DestOutputProfile")
        if profile is not None and isinstance(profile.get_object(), StreamObject):
            stream = profile.get_object()
            data = stream.get_data()
            if len(data) >= _ICC_DATE.stop:
                stream.set_data(data[:_ICC_DATE.start] + _FIXED_ICC_DATE + data[_ICC_DATE.stop:])
    identity = ByteStringObject(hashlib.md5(original_sha256.encode(), usedforsecurity=False).digest())
    writer._ID = ArrayObject([identity, identity])  # pypdf's documented slot for the trailer's /ID
    part = path.with_name(path.name + ".settled")
    with part.open("wb") as fh:
        writer.write(fh)
    os.replace(part, path)
