"""The package layout (归档信息包, DA/T 93 件-level) and repository keys, defined once.

Packager, repositories, checks and the audit all import these names; none of them spells a file
name of the package on its own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import PurePosixPath

from schemas.model import DocumentGroup

METADATA_FILE = "元数据.xml"
CHECK_REPORT_FILE = "检测报告.xml"
MANIFEST_SM3 = "manifest-sm3.txt"
MANIFEST_SHA256 = "manifest-sha256.txt"
# Written last; a package without it is not complete, whatever else is there.
COMPLETION_MARKER = "_COMPLETE"

GROUP_FOLDERS: tuple[str, ...] = tuple(g.value for g in DocumentGroup)

# Files that the manifests list: every document and 元数据.xml (the manifests cannot list
# themselves; 检测报告.xml is written after they are and is covered by the completion marker).
TRANSFERS_PREFIX = "transfers"


def document_path(group: DocumentGroup, file_name: str) -> str:
    """Relative path of a document inside its package, after `safe_relative_path` has passed it."""
    return f"{group.value}/{file_name}"


# Bytes per path segment that ext4, XFS, btrfs and most other file systems allow (UTF-8: a Chinese
# character takes 3). A stored name never passes it; S3 keys (1,024 bytes) leave room for the prefix.
NAME_MAX_BYTES = 255
# A "suffix" longer than this is part of the name, not an extension worth keeping whole.
_EXTENSION_MAX_BYTES = 16


def name_key(name: str) -> str:
    """Names that collide on a case-insensitive or normalising file system count as the same."""
    return unicodedata.normalize("NFC", name).casefold()


def _fit(stem: str, tail: str, limit: int) -> str:
    """`stem + tail` within `limit` UTF-8 bytes, the stem shortened by whole characters."""
    budget = limit - len(tail.encode("utf-8"))
    data = stem.encode("utf-8")
    if len(data) <= budget:
        return stem + tail
    short = data[:budget].decode("utf-8", errors="ignore").rstrip()  # never half a character
    return short + tail


# Names Windows reserves for devices, whatever the extension or case (CON.pdf opens the console),
# and the invisible characters that reorder a name on screen (U+202E shows "fdp.exe" as "exe.pdf").
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                       *(f"LPT{i}" for i in range(1, 10))})
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def portable_name(name: str) -> str:
    """`name` as any file system the archive may be copied to can hold it: bidirectional controls
    removed, trailing dots and spaces removed (Windows drops them, so two names would meet), and a
    Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any extension, in any case)
    prefixed with "_". Unchanged for every other name."""
    out = _BIDI.sub("", name).rstrip(". ")
    if out.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        out = "_" + out
    return out or "_"


def stored_names(names: Sequence[str], *, limit: int = NAME_MAX_BYTES) -> list[str]:
    """The names under which the documents of one material folder are stored, in their order.

    A name that fits and is the first of its kind (by `name_key`) is kept as it is. A name too long
    is shortened (extension kept, the stem cut by bytes); a name no portable file system can hold
    is made `portable_name`; a later one equal to an earlier one gets
    "(2)", "(3)", … before its extension, skipping every name already taken. The result depends on
    the list alone, so a re-run stores the same names and builds the same bytes. The names must
    have passed `is_dangerous_path`.
    """
    out: list[str | None] = [None] * len(names)
    taken: set[str] = set()
    portable = [portable_name(n) for n in names]
    for i, name in enumerate(names):  # first pass: every name that can stay as it is, stays
        if portable[i] == name and len(name.encode("utf-8")) <= limit and name_key(name) not in taken:
            out[i] = name
            taken.add(name_key(name))
    for i, name in enumerate(portable):
        if out[i] is not None:
            continue
        ext = PurePosixPath(name).suffix
        if len(ext.encode("utf-8")) > _EXTENSION_MAX_BYTES or ext == name:
            ext = ""
        stem = name[: len(name) - len(ext)]
        n = 1 if name_key(_fit(stem, ext, limit)) not in taken else 2  # a duplicate starts at (2)
        while True:
            candidate = _fit(stem, ext if n == 1 else f"({n}){ext}", limit)
            if name_key(candidate) not in taken:
                break
            n += 1
        out[i] = candidate
        taken.add(name_key(candidate))
    return [n for n in out if n is not None]


def package_key(fonds: str, year: int, period: str, archival_code: str) -> str:
    """`<全宗号>/<年度>/<保管期限>/<档号>`: the prefix of every object of one package."""
    return f"{fonds}/{year}/{period}/{archival_code}"


def transfer_key(batch_id: str) -> str:
    return f"{TRANSFERS_PREFIX}/{batch_id}"


_CONTROL = re.compile(r"[\x00-\x1f]")


def is_dangerous_path(rel: str) -> bool:
    """True when `rel` would escape the folder it is meant to stay in.

    Refused: empty names, absolute paths (POSIX or Windows drive/UNC), any `..` segment, `.`
    segments, backslashes (a Windows separator a POSIX check would miss) and control characters.
    The single gate every file name from a source and every manifest path passes through.
    """
    if not rel or rel != rel.strip() or "\\" in rel or _CONTROL.search(rel):
        return True
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return True
    # Split by hand: PurePosixPath would normalise "a//b" and "a/./b" away before we could see them.
    parts = rel.split("/")
    return any(p in ("..", ".", "") for p in parts) or rel.endswith("/")
