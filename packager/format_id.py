"""Format identification against PRONOM, the registry digital-preservation systems record.

The short format name in 元数据 (PDF, OFD, …) comes from packager/formats.py's magic bytes; this
module adds what a receiving archive looks up: the PRONOM format name, its version and its
persistent unique identifier (PUID, e.g. fmt/276 for PDF 1.7). It wraps FIDO (PyPI `opf-fido`, the
Open Preservation Foundation's identifier), chosen because it is pure Python, ships the PRONOM
signature file inside the wheel (it works offline, nothing is downloaded at run time), reports
PUIDs, and matches PRONOM's own byte sequences at the beginning and end of a file, as DROID does.
python-magic and puremagic report media types only; siegfried has no Python distribution.

FIDO is given the first and last `BUFFER_SIZE` bytes, read by seeking: a file is never read whole.
Its matcher keeps state on the instance, so each thread has its own (loading one takes ~0.2 s).
Formats PRONOM does not register (OFD, GB/T 33190) get no PUID; the caller names them itself.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

BUFFER_SIZE = 128 * 1024  # FIDO's own default window


@dataclass(frozen=True, slots=True)
class PronomMatch:
    """The PRONOM entry a file's bytes match (signature match, never the extension alone)."""

    puid: str  # e.g. "fmt/276"
    name: str  # e.g. "Acrobat PDF 1.7 - Portable Document Format"
    version: str | None  # e.g. "1.7"
    media_type: str | None
    extensions: tuple[str, ...] = ()


class _ThreadFido(threading.local):
    def __init__(self) -> None:
        self.fido: Any = None


_LOCAL = _ThreadFido()


@cache
def _format_files() -> list[str]:
    """The newest PRONOM signature file the installed FIDO ships (formats-vNNN.xml)."""
    from fido import CONFIG_DIR

    versions = sorted(
        (int(n[len("formats-v"):-len(".xml")]), n)
        for n in os.listdir(CONFIG_DIR)
        if n.startswith("formats-v") and n.endswith(".xml") and n[len("formats-v"):-len(".xml")].isdigit()
    )
    if not versions:
        raise RuntimeError("the installed opf-fido ships no PRONOM signature file (formats-vNNN.xml)")
    return [versions[-1][1], "format_extensions.xml"]


def signature_version() -> str:
    """Which PRONOM signature release identified the files (e.g. "formats-v109.xml")."""
    return _format_files()[0]


def _fido() -> Any:
    if _LOCAL.fido is None:
        from fido.fido import Fido

        _LOCAL.fido = Fido(quiet=True, handle_matches=lambda *args, **kwargs: None,
                           format_files=_format_files(), nocontainer=True)
    return _LOCAL.fido


def identify_bytes(head: bytes, tail: bytes) -> list[PronomMatch]:
    """Every PRONOM format whose signature matches, inferior matches removed (FIDO's priorities)."""
    fido = _fido()
    out = []
    for fmt, _signature in fido.match_formats(head, tail):
        version = (fmt.findtext("version") or "").strip() or None
        out.append(PronomMatch(
            puid=fido.get_puid(fmt),
            name=(fmt.findtext("name") or "").strip(),
            version=version,
            media_type=(fmt.findtext("mime") or "").strip() or None,
            extensions=tuple(e.text.strip().lower() for e in fmt.findall("extension") if e.text),
        ))
    return out


def identify_pronom(path: Path) -> PronomMatch | None:
    """The best PRONOM match for the file's content, None when no signature matches (plain text,
    OFD and other formats without a PRONOM signature). Of several equally good matches the one
    with the lowest PUID number wins, so the answer does not depend on the signature file's order."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(BUFFER_SIZE)
        if size <= BUFFER_SIZE:
            tail = head
        else:
            fh.seek(size - BUFFER_SIZE)
            tail = fh.read(BUFFER_SIZE)
    matches = identify_bytes(head, tail)
    if not matches:
        return None
    return min(matches, key=_puid_key)


def _puid_key(m: PronomMatch) -> tuple[str, int, str]:
    prefix, _, number = m.puid.partition("/")
    return (prefix, int(number) if number.isdigit() else 0, m.puid)


def pronom_mismatch(match: PronomMatch | None, file_name: str) -> str | None:
    """Why the content is not what the name says, by PRONOM: the file carries the signature of a
    format that does not list the name's extension (a Rich Text file named .pdf). None when
    nothing matched, the name has no extension, or the format lists it."""
    ext = PurePosixPath(file_name).suffix.lower().lstrip(".")
    if match is None or not ext or not match.extensions or ext in match.extensions:
        return None
    return f"content is {match.name} ({match.puid}), name says .{ext}"


# Formats guidang recognises inside a container PRONOM only knows as the container (an OFD is a
# ZIP to PRONOM, x-fmt/263): recording the container's PUID would name the wrong format.
_NOT_IN_PRONOM = frozenset({"OFD"})


def recorded_puid(format_name: str, match: PronomMatch | None) -> str | None:
    """The PUID 元数据 records for a document whose short format is `format_name`."""
    if match is None or format_name in _NOT_IN_PRONOM:
        return None
    return match.puid
