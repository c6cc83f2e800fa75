"""The PRONOM matcher's tables (packager/format_id._Matcher) kept between processes.

Why: building the matcher means parsing FIDO's 3.6 MB signature file and analysing its ~2,300
regexes with Python's regex parser (packager/format_index.py): some 0.4 s of CPU in every process
that identifies a format, which was more than the rest of `guidang check PACKAGE` together. The
tables are a pure function of FIDO's signature files, of format_index.py's and format_id.py's code
and of the Python version, so they are stored in a file named by a digest of all of these: a new
PRONOM release, a changed analysis or another interpreter reads a new file, never an old answer.
The file is the program's own (written whole, then renamed into place) and is still read
defensively: anything unreadable or of the wrong shape is ignored and the tables built from FIDO.
The cache can change what identification costs, never what it answers.

Where: `GUIDANG_CACHE_DIR`, else `$XDG_CACHE_HOME/guidang`, else `~/.cache/guidang`.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# One pattern: position ("BOF", "EOF", "VAR", "IFB"), regex source, needles (literal, first offset,
# end offset or None: the buffer's end), window (the longest match, None: unbounded).
Pattern = tuple[str, bytes, tuple[tuple[bytes, int, int | None], ...], int | None]
# One format: PUID, name, version, media type, extensions, signatures (each a tuple of patterns).
Format = tuple[str, str, str | None, str | None, tuple[str, ...], tuple[tuple[Pattern, ...], ...]]
# formats (in FIDO's order), formats no anchor narrows, (side, offset) -> byte -> formats, PUID -> PUIDs below it
Tables = tuple[list[Format], list[int], dict[tuple[str, int], dict[int, list[int]]], dict[str, tuple[str, ...]]]


def cache_dir() -> Path:
    if os.environ.get("GUIDANG_CACHE_DIR"):
        return Path(os.environ["GUIDANG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "guidang"


def cache_file(sources: Iterable[Path]) -> Path:
    """The file for tables built from `sources`: FIDO's signature files and the code that builds
    the tables from them (the caller names both, this module imports neither)."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return cache_dir() / f"pronom-matcher-{digest.hexdigest()[:16]}.marshal"


def _opt(value: Any, kind: type) -> bool:
    return value is None or type(value) is kind


def _valid_format(fmt: Any) -> bool:
    puid, name, version, mime, extensions, signatures = fmt
    if not (type(puid) is str and type(name) is str and _opt(version, str) and _opt(mime, str)):
        return False
    if type(extensions) is not tuple or any(type(e) is not str for e in extensions):
        return False
    for patterns in signatures:
        for position, regex, needles, window in patterns:
            if type(position) is not str or type(regex) is not bytes or not _opt(window, int):
                return False
            for lit, lo, end in needles:
                if type(lit) is not bytes or type(lo) is not int or not _opt(end, int):
                    return False
    return True


def _valid(value: Any) -> bool:
    """Whether `value` has the shape of Tables, each index in range (ValueError, TypeError or
    IndexError from a shape so wrong it cannot be unpacked count as False for the caller)."""
    formats, anywhere, by_anchor, priority = value
    if type(formats) is not list or not all(map(_valid_format, formats)):
        return False
    count = len(formats)
    if type(anywhere) is not list or any(type(i) is not int or not 0 <= i < count for i in anywhere):
        return False
    for (side, offset), table in by_anchor.items():
        if type(side) is not str or type(offset) is not int or type(table) is not dict:
            return False
        for byte, chosen in table.items():
            if type(byte) is not int or type(chosen) is not list:
                return False
            if any(type(i) is not int or not 0 <= i < count for i in chosen):
                return False
    return type(priority) is dict and all(
        type(k) is str and type(v) is tuple and all(type(p) is str for p in v) for k, v in priority.items())


def load(path: Path) -> Tables | None:
    """The tables stored at `path`; None when the file is absent, unreadable or not of their shape."""
    try:
        value = marshal.loads(path.read_bytes())
        if _valid(value):
            return value
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError):
        pass
    return None


def save(path: Path, tables: Tables) -> None:
    """Write the tables whole, then rename them into place; a cache that cannot be written (a
    read-only home, a full disk) is skipped silently: the next process builds them again."""
    data = marshal.dumps(tables)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass
