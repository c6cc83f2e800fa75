"""The OFD container (GB/T 33190 §7: a ZIP of XML parts and resources) read within bounds.

A hostile container can list one large part as a thousand pages or make a seal reference a
zip-bomb member many times; so every part is parsed at most once and digested at most once per
algorithm however often it is referenced, and all reading counts against one budget of
decompressed bytes (`OfdLimits.max_decompressed_bytes`): past it the walk stops with a problem
naming the part that crossed it. Everything is streamed from the member; no member is read whole
except an XML part under `XML_PART_LIMIT` and a signed value under `SIGNED_VALUE_LIMIT`.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from lxml import etree

from schemas.pickling import by_fields

XML_PART_LIMIT = 16 * 1024 * 1024  # an OFD XML part larger than this is not parsed
SIGNED_VALUE_LIMIT = 4 * 1024 * 1024  # SignedValue.dat (a seal with its picture) larger than this is refused
_CHUNK = 1024 * 1024


@by_fields
@dataclass(frozen=True, slots=True)
class OfdLimits:
    """How much one OFD may make guidang do (configuration `ofd:`)."""

    max_pages: int = 5000
    max_references: int = 2000  # per signature
    max_signatures: int = 100
    max_decompressed_bytes: int = 1024 * 1024 * 1024


class Broken(Exception):
    """A part that stops the walk (no OFD.xml, no Document.xml, the budget spent)."""


def local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def children(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [c for c in el if local(c) == name] if el is not None else []


def child(el: etree._Element | None, name: str) -> etree._Element | None:
    found = children(el, name)
    return found[0] if found else None


def text(el: etree._Element | None) -> str | None:
    return (el.text or "").strip() or None if el is not None else None


def normalise(path: str) -> str | None:
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


class Container:
    """The ZIP, its member names, and part resolution as GB/T 33190 §7.5 puts it: a location
    starting with "/" is from the container root, any other is relative to the referring part's
    folder (a root-relative reading is accepted too, as several producers write them so)."""

    def __init__(self, zf: zipfile.ZipFile, limits: OfdLimits) -> None:
        self.zf = zf
        self.limits = limits
        self.names = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        self.spent = 0
        self._parsed: dict[str, etree._Element | Broken] = {}
        self._digests: dict[tuple[str, str], bytes | Broken] = {}

    def resolve(self, loc: str, base: str) -> str | None:
        loc = loc.strip().replace("\\", "/")
        if not loc:
            return None
        parent = PurePosixPath(base).parent
        candidates = [loc.lstrip("/")] if loc.startswith("/") else [
            str(parent / loc) if parent.name else loc, loc]
        for c in candidates:
            norm = normalise(c)
            if norm is not None and norm in self.names:
                return norm
        return None

    def expected(self, loc: str, base: str) -> str:
        """Where a location points, for a message about a part that is not there."""
        loc = loc.strip().replace("\\", "/")
        parent = PurePosixPath(base).parent
        joined = loc.lstrip("/") if loc.startswith("/") or not parent.name else str(parent / loc)
        return normalise(joined) or loc

    def _read(self, name: str, sink: Callable[[bytes], None], cap: int | None = None) -> None:
        """Stream a member into `sink`, counting against the budget; a member longer than `cap`
        (its real decompressed length, whatever the directory claims) is refused."""
        read = 0
        try:
            with self.zf.open(self.names[name]) as fh:
                while chunk := fh.read(_CHUNK):
                    read += len(chunk)
                    self.spent += len(chunk)
                    if self.spent > self.limits.max_decompressed_bytes:
                        raise Broken(f"{name}: reading it passes the limit of {self.limits.max_decompressed_bytes:,} "
                                     "decompressed bytes for one OFD")
                    if cap is not None and read > cap:
                        raise Broken(f"{name}: more than {cap:,} bytes decompressed, above the limit for this part")
                    sink(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:  # bad CRC, cut member, encrypted
            raise Broken(f"{name}: cannot be read from the container ({exc})") from exc

    def parse(self, name: str) -> etree._Element:
        """The part's XML root, parsed once; the same Broken again for a part that failed."""
        if name not in self._parsed:
            self._parsed[name] = self._parse(name)
        found = self._parsed[name]
        if isinstance(found, Broken):
            raise found
        return found

    def _parse(self, name: str) -> etree._Element | Broken:
        info = self.names[name]
        if info.file_size > XML_PART_LIMIT:
            return Broken(f"{name}: {info.file_size:,} bytes, above the {XML_PART_LIMIT:,}-byte limit for an XML part")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            self._read(name, parser.feed, XML_PART_LIMIT)
            return parser.close()
        except etree.XMLSyntaxError as exc:
            return Broken(f"{name}: not well-formed XML ({exc})")
        except Broken as exc:
            if self.spent > self.limits.max_decompressed_bytes:
                raise
            return exc

    def read_small(self, name: str, cap: int = SIGNED_VALUE_LIMIT) -> bytes:
        """A small member whole (a signed value, Signature.xml), refused above `cap`."""
        parts: list[bytes] = []
        self._read(name, parts.append, cap)
        return b"".join(parts)

    def digest(self, name: str, algorithm: str, prefix: bytes = b"") -> bytes:
        """The member's digest (after `prefix`, for SM3 with Z), computed once per algorithm and prefix."""
        key = (name, algorithm + prefix.hex())
        if key not in self._digests:
            h = hashlib.new(algorithm)
            h.update(prefix)
            try:
                self._read(name, h.update)
                self._digests[key] = h.digest()
            except Broken as exc:
                if self.spent > self.limits.max_decompressed_bytes:
                    raise
                self._digests[key] = exc
        found = self._digests[key]
        if isinstance(found, Broken):
            raise found
        return found
