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

from packager import format_cache, format_index
from packager.format_index import PatternFacts, best_anchor, pattern_facts

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
    every file, which costs more per document than hashing a megabyte of it; and it tries all
    ~2,300 formats on every file. This tries a file only against the formats one of whose
    signatures it could match (packager/format_index.py: a byte at a fixed offset, a literal the
    match must contain, the window an end-anchored pattern can reach), in FIDO's order, which its
    priority rules rely on. The tables come from an earlier process's cache file when it has them
    (packager/format_cache.py), built from FIDO's signature files when not. The matcher holds no
    per-file state: every thread shares one instance."""

    def __init__(self) -> None:
        from fido import CONFIG_DIR

        path = format_cache.cache_file(_table_sources(Path(CONFIG_DIR)))
        tables = format_cache.load(path)
        if tables is None:
            tables = _tables_from_fido()
            format_cache.save(path, tables)
        formats, self.anywhere, self.by_anchor, priority = tables
        self.formats: list[tuple[PronomMatch, str, tuple[tuple[_Pattern, ...], ...]]] = [
            (PronomMatch(puid, name, version, mime, extensions), puid,
             tuple(tuple((position, _Regex(regex), needles, window) for position, regex, needles, window in patterns)
                   for patterns in signatures))
            for puid, name, version, mime, extensions, signatures in formats
        ]
        self.priority: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in priority.items()}
        # the other way round: which PUIDs have priority over this one (checked for every candidate
        # once a first match is found, so a set intersection instead of a walk over the matches)
        beaten: dict[str, set[str]] = {}
        for other, below in self.priority.items():
            for puid in below:
                if puid != other:
                    beaten.setdefault(puid, set()).add(other)
        self.beaten_by: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in beaten.items()}

    def _as_good_as_any(self, puid: str, found: set[str]) -> bool:
        """No PUID found so far has priority over `puid`."""
        above = self.beaten_by.get(puid)
        return above is None or above.isdisjoint(found)

    def candidates(self, head: bytes, tail: bytes) -> list[int]:
        """The formats the file could match, in FIDO's order."""
        chosen = set(self.anywhere)
        for (side, offset), table in self.by_anchor.items():
            if side == "B":
                if offset < len(head):
                    chosen.update(table.get(head[offset], ()))
            elif offset < len(tail):
                chosen.update(table.get(tail[-1 - offset], ()))
        return sorted(chosen)

    def match(self, head: bytes, tail: bytes) -> list[PronomMatch]:
        # The loops are written out (no all() over generators): this runs for ~230 formats on every
        # document, and most fail at their first literal, where the generator's setup was the cost.
        found: list[tuple[PronomMatch, str]] = []
        found_puids: set[str] = set()
        seen: dict[bytes, bool] = {}
        head_len, tail_len = len(head), len(tail)
        for i in self.candidates(head, tail):
            fmt, puid, signatures = self.formats[i]
            if found_puids and not self._as_good_as_any(puid, found_puids):
                continue
            for patterns in signatures:
                for position, lazy, needles, window in patterns:
                    if position == "BOF":
                        for lit, lo, end in needles:
                            if head.find(lit, lo, end or head_len) < 0:
                                break
                        else:
                            if lazy.compiled().match(head):
                                continue  # this pattern holds: the signature's next one
                    elif position == "EOF":
                        start = tail_len - window if window is not None and window < tail_len else 0
                        for lit, _, _ in needles:
                            if tail.find(lit, start) < 0:
                                break
                        else:
                            if lazy.compiled().search(tail, start):
                                continue
                    else:  # VAR, IFB: anywhere in the first buffer (PDF/A's eight share one needle)
                        for lit, _, _ in needles:
                            if not _contains(head, lit, seen):
                                break
                        else:
                            if lazy.compiled().search(head):
                                continue
                    break  # a pattern failed: so did the signature
                else:
                    found.append((fmt, puid))
                    found_puids.add(puid)
        return [fmt for fmt, puid in found if self._as_good_as_any(puid, found_puids)]


def _contains(buffer: bytes, needle: bytes, seen: dict[bytes, bool]) -> bool:
    if needle not in seen:
        seen[needle] = needle in buffer
    return seen[needle]


class _Regex:
    """A FIDO regex compiled when a file first gets as far as it. Of ~2,300 patterns a night's
    documents reach a few hundred (a PDF is tried against 228 formats, the same ones every time);
    compiling all of them up front was half a second of every night's worker start. A pattern that
    does not compile matches nothing, as FIDO skips a format it cannot compile."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern  # the source, named as re.Pattern names it
        self._compiled: re.Pattern[bytes] | None = None

    def compiled(self) -> re.Pattern[bytes]:
        if self._compiled is None:  # two threads may both compile it: the same pattern, harmless
            try:
                self._compiled = re.compile(self.pattern)
            except re.error:
                self._compiled = _NEVER
        return self._compiled


_NEVER = re.compile(rb"(?!)")  # matches nowhere

# position, regex, needles (literal, first offset, end offset or None: the buffer's end), window
_Pattern = tuple[str, _Regex, tuple[tuple[bytes, int, int | None], ...], int | None]


def _table_sources(config_dir: Path) -> list[Path]:
    """What the matcher's tables are a function of: this code, the analysis, FIDO's signature files."""
    return [Path(__file__), Path(format_index.__file__), *(config_dir / name for name in _format_files())]


def _tables_from_fido() -> format_cache.Tables:
    """The matcher's tables from FIDO's signature files: each format's signatures with the necessary
    conditions that let most files skip their regexes, and the formats indexed by their anchors."""
    from fido.fido import Fido

    fido = Fido(quiet=True, handle_matches=lambda *args, **kwargs: None, format_files=_format_files(),
                nocontainer=True)
    formats: list[format_cache.Format] = []
    anywhere: list[int] = []  # formats with a signature no anchor narrows: tried on every file
    by_anchor: dict[tuple[str, int], dict[int, list[int]]] = {}
    for fmt in fido.formats:
        try:
            # A signature matches when all its patterns do, so they are tried cheapest first: an
            # anchored one (BOF) fails at once where a search (EOF, VAR) would scan 128 KiB.
            signatures = tuple(
                tuple(sorted((_pattern(p.find("position").text, p.find("regex").text) for p in sig.findall("pattern")),
                             key=lambda pattern: _COST.get(pattern[0], 3)))
                for sig in fmt.findall("signature")
            )
        except AttributeError:  # FIDO skips a format whose pattern it cannot use
            continue
        i = len(formats)
        entry = _as_match(fmt)
        formats.append((entry.puid, entry.name, entry.version, entry.media_type, entry.extensions,
                        tuple(tuple(p[:4] for p in s) for s in signatures)))
        if not signatures:  # an extension-only entry: FIDO never finds it by content
            continue
        anchors = [best_anchor([p[4] for p in patterns]) for patterns in signatures]
        if None in anchors:
            anywhere.append(i)
            continue
        for anchor in dict.fromkeys(anchors):
            table = by_anchor.setdefault((anchor.side, anchor.offset), {})
            for b in sorted(anchor.allowed):
                if not table.get(b) or table[b][-1] != i:
                    table.setdefault(b, []).append(i)
    priority = {puid: tuple(sorted(below)) for puid, below in fido.puid_has_priority_over_map.items()}
    return formats, anywhere, by_anchor, priority


def _pattern(position: str, regex: str
             ) -> tuple[str, bytes, tuple[tuple[bytes, int, int | None], ...], int | None, PatternFacts]:
    """A FIDO pattern with the necessary conditions that let most files skip its regex."""
    source = regex.encode("utf8")
    facts = pattern_facts(position, source)
    needles = []
    for lit, lo, hi in facts.needles:
        end = None if hi is None else hi + len(lit)
        if position == "BOF" and facts.window is not None:
            end = facts.window if end is None else min(end, facts.window)
        needles.append((lit, lo if position == "BOF" else 0, end if position == "BOF" else None))
    return position, source, tuple(needles), facts.window, facts


_COST = {"BOF": 0, "EOF": 1, "IFB": 2, "VAR": 2}
_MATCHER_LOCK = threading.Lock()
_MATCHER: list[_Matcher] = []


def _matcher() -> _Matcher:
    with _MATCHER_LOCK:
        if not _MATCHER:
            _MATCHER.append(_Matcher())
        return _MATCHER[0]


def identify_bytes(head: bytes, tail: bytes) -> list[PronomMatch]:
    """Every PRONOM format whose signature matches, inferior matches removed (FIDO's priorities)."""
    return _matcher().match(head, tail)


def _as_match(fmt: Any) -> PronomMatch:
    return PronomMatch(
        puid=fmt.find("puid").text,
        name=(fmt.findtext("name") or "").strip(),
        version=(fmt.findtext("version") or "").strip() or None,
        media_type=(fmt.findtext("mime") or "").strip() or None,
        extensions=tuple(e.text.strip().lower() for e in fmt.findall("extension") if e.text),
    )


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
    return best_pronom(head, tail)


def best_pronom(head: bytes, tail: bytes) -> PronomMatch | None:
    """`identify_pronom` over a file's first and last BUFFER_SIZE bytes, already in memory (staging
    keeps them as the document streams past). Only identifiers 元数据 can record are answered
    (`as_pronom`): the archive must never refuse its own metadata."""
    if not head:  # an empty file is no format at all (some signatures are all optional bytes)
        return None
    matches = [m for m in map(as_pronom, identify_bytes(head, tail)) if m is not None]
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
_NOT_IN_PRONOM = frozenset({"OFD", "WPS", "ET", "DPS", "EMPTY"})
# What a PUID must look like in 元数据 (metadata.xsd's PRONOM标识 pattern): PRONOM's own identifiers.
PUID_PATTERN = re.compile(r"(x-)?fmt/[0-9]+")
# FIDO's format_extensions.xml adds entries of its own ("fido-fmt/189.word"): the three OOXML
# variants are PRONOM formats under another name; the others are not in PRONOM at all.
_FIDO_VARIANTS = {"fido-fmt/189.word": "fmt/412", "fido-fmt/189.xl": "fmt/214", "fido-fmt/189.ppt": "fmt/215"}


def pronom_entry(puid: str) -> PronomMatch | None:
    """PRONOM's name, version and media type for a PUID, from the shipped signature file (FIDO's
    format_extensions.xml repeats some PUIDs under other names and without a version: PRONOM's
    own entry, the one with a version, wins)."""
    entries = [entry for entry, found, _ in _matcher().formats if found == puid]
    return max(entries, key=lambda m: m.version is not None, default=None)


def as_pronom(match: PronomMatch | None) -> PronomMatch | None:
    """The match as 元数据 may record it: FIDO's own variant identifiers mapped to the PRONOM entry
    they stand for, any other identifier that is not PRONOM's dropped (None: no PUID recorded)."""
    if match is None or PUID_PATTERN.fullmatch(match.puid):
        return match
    mapped = _FIDO_VARIANTS.get(match.puid)
    return pronom_entry(mapped) if mapped else None


def recorded_puid(format_name: str, match: PronomMatch | None) -> str | None:
    """The PUID 元数据 records for a document whose short format is `format_name`."""
    match = as_pronom(match)
    if match is None or format_name in _NOT_IN_PRONOM:
        return None
    return match.puid
