"""Format identification against PRONOM, the registry digital-preservation systems record.

The short format name in 元数据 (PDF, OFD, …) comes from packager/formats.py's magic bytes; this
module adds what a receiving archive looks up: the PRONOM format name, its version and its
persistent unique identifier (PUID, e.g. fmt/276 for PDF 1.7). It wraps FIDO (PyPI `opf-fido`, the
Open Preservation Foundation's identifier), chosen because it is pure Python, ships the PRONOM
signature file inside the wheel (it works offline, nothing is downloaded at run time), reports
PUIDs, and matches PRONOM's own byte sequences at the beginning and end of a file, as DROID does.
python-magic and puremagic report media types only; siegfried has no Python distribution.

FIDO is given the first and last `BUFFER_SIZE` bytes, read by seeking: a file is never read whole.
Its signatures are compiled once per process (`_Matcher`) and matched as FIDO matches them.
Formats PRONOM does not register (OFD, GB/T 33190) get no PUID; the caller names them itself.
"""

from __future__ import annotations

import os
import re
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


class _Matcher:
    """FIDO's matching (`Fido.match_formats`: the same signatures, positions and priorities), over
    patterns compiled once. FIDO itself walks its XML elements and looks each regex up again for
    every file, which cost ~13 ms per document, more than hashing a megabyte; this takes well
    under one. The matcher holds no per-file state, so every thread shares the one instance."""

    def __init__(self) -> None:
        from fido.fido import Fido

        fido = Fido(quiet=True, handle_matches=lambda *args, **kwargs: None, format_files=_format_files(),
                    nocontainer=True)
        self.priority: dict[str, frozenset[str]] = fido.puid_has_priority_over_map
        self.formats: list[tuple[Any, str, tuple[tuple[tuple[str, re.Pattern[bytes]], ...], ...]]] = []
        for fmt in fido.formats:
            try:
                # A signature matches when all its patterns do, so they are tried cheapest first: an
                # anchored one (BOF) fails at once where a search (EOF, VAR) would scan 128 KiB.
                signatures = tuple(
                    tuple(sorted(
                        ((p.find("position").text, re.compile(p.find("regex").text.encode("utf8")))
                         for p in sig.findall("pattern")),
                        key=lambda pattern: _COST.get(pattern[0], 3),
                    ))
                    for sig in fmt.findall("signature")
                )
            except (re.error, AttributeError):  # FIDO skips a format whose pattern it cannot use
                continue
            self.formats.append((fmt, fmt.find("puid").text, signatures))
        # Most signatures are anchored at the first byte with a literal: a file need only be tried
        # against the formats whose signatures could start with its first byte, and those that
        # cannot be indexed so (in FIDO's order, which its priority rules rely on).
        self.anywhere: list[int] = []
        self.by_first_byte: dict[int, list[int]] = {}
        for i, (_, _, signatures) in enumerate(self.formats):
            firsts = {_first_byte(patterns) for patterns in signatures}
            if None in firsts or not firsts:
                self.anywhere.append(i)
            else:
                for b in firsts:
                    self.by_first_byte.setdefault(b, []).append(i)  # type: ignore[arg-type]

    def _as_good_as_any(self, puid: str, found: list[tuple[Any, str]]) -> bool:
        return not any(other != puid and puid in self.priority.get(other, frozenset()) for _, other in found)

    def match(self, head: bytes, tail: bytes) -> list[Any]:
        found: list[tuple[Any, str]] = []
        candidates = sorted({*self.anywhere, *self.by_first_byte.get(head[0], ())}) if head else self.anywhere
        for i in candidates:
            fmt, puid, signatures = self.formats[i]
            if not self._as_good_as_any(puid, found):
                continue
            for patterns in signatures:
                for position, regex in patterns:
                    if position == "BOF":
                        hit = regex.match(head)
                    elif position == "EOF":
                        hit = regex.search(tail)
                    else:  # VAR, IFB: anywhere in the first buffer
                        hit = regex.search(head)
                    if not hit:
                        break
                else:
                    found.append((fmt, puid))
        return [fmt for fmt, puid in found if self._as_good_as_any(puid, found)]


_COST = {"BOF": 0, "EOF": 1, "IFB": 2, "VAR": 2}
_ANCHOR = b"(?s)\\A"
_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("f"): 0x0C, ord("v"): 0x0B, ord("0"): 0x00}
_META = set(b".[](){}^$|?*+\\")


def _first_byte(patterns: tuple[tuple[str, re.Pattern[bytes]], ...]) -> int | None:
    """The byte a signature's match must start with, when its first pattern is anchored at the
    beginning of the file and opens with a literal; None when it could start with anything."""
    if not patterns or patterns[0][0] != "BOF":
        return None
    regex = patterns[0][1].pattern
    if not regex.startswith(_ANCHOR) or len(regex) <= len(_ANCHOR):
        return None
    rest = regex[len(_ANCHOR):]
    first, following = rest[0], rest[1:2]
    if following in (b"?", b"*", b"{"):
        return None  # the first atom may be absent or repeated: not a fixed first byte
    if first != 0x5C:  # a plain byte
        return None if first in _META else first
    if rest[1:2] == b"x" and len(rest) >= 4:
        if rest[4:5] in (b"?", b"*", b"{"):
            return None
        try:
            return int(rest[2:4], 16)
        except ValueError:
            return None
    escaped = rest[1]
    if rest[2:3] in (b"?", b"*", b"{"):
        return None
    if escaped in _ESCAPES:
        return _ESCAPES[escaped]
    if chr(escaped).isalnum():  # \d, \w, \s, \b ...: a class, not a byte
        return None
    return escaped
_MATCHER_LOCK = threading.Lock()
_MATCHER: list[_Matcher] = []


def _matcher() -> _Matcher:
    with _MATCHER_LOCK:
        if not _MATCHER:
            _MATCHER.append(_Matcher())
        return _MATCHER[0]


def identify_bytes(head: bytes, tail: bytes) -> list[PronomMatch]:
    """Every PRONOM format whose signature matches, inferior matches removed (FIDO's priorities)."""
    out = []
    for fmt in _matcher().match(head, tail):
        version = (fmt.findtext("version") or "").strip() or None
        out.append(PronomMatch(
            puid=fmt.find("puid").text,
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
