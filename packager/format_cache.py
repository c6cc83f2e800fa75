"""The analysis of PRONOM's patterns (packager/format_index.pattern_facts) kept between processes.

Why: analysing FIDO's ~2,300 patterns with Python's regex parser costs some 0.2 s of CPU in every
process that identifies a format, which was a fifth of `guidang check PACKAGE`. The analysis is a
pure function of (position, regex) and of format_index.py's own code, so its results are stored in
a file named by a digest of that code and the Python version: a changed analysis or interpreter
reads a new file, never an old answer. A pattern the file lacks (a newer PRONOM release) is
analysed and the file rewritten. The file is the program's own (written whole, then renamed into
place) and is still read defensively: anything unreadable or of the wrong shape is ignored and the
analysis done in memory. The cache can change what identification costs, never what it answers.

Where: `GUIDANG_CACHE_DIR`, else `$XDG_CACHE_HOME/guidang`, else `~/.cache/guidang`.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from packager import format_index
from packager.format_index import Anchor, PatternFacts, pattern_facts

Key = tuple[str, bytes]  # (position, regex)


def cache_dir() -> Path:
    if os.environ.get("GUIDANG_CACHE_DIR"):
        return Path(os.environ["GUIDANG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "guidang"


def cache_file() -> Path:
    code = Path(format_index.__file__).read_bytes()
    digest = hashlib.sha256(code + sys.version.encode()).hexdigest()[:16]
    return cache_dir() / f"pronom-patterns-{digest}.marshal"


def _facts(value: Any) -> PatternFacts:
    """A stored entry back as PatternFacts; TypeError or ValueError when it is not one. The bytes an
    anchor allows are stored as a bytes object: frozenset() of it gives the byte values at C speed."""
    anchors, needles, window = value
    for side, offset, allowed in anchors:
        if type(side) is not str or type(offset) is not int or type(allowed) is not bytes:
            raise TypeError("not an anchor")
    for lit, lo, hi in needles:
        if type(lit) is not bytes or type(lo) is not int or not (hi is None or type(hi) is int):
            raise TypeError("not a needle")
    if not (window is None or type(window) is int):
        raise TypeError("not a window")
    return PatternFacts(anchors=tuple(Anchor(side, offset, frozenset(allowed)) for side, offset, allowed in anchors),
                        needles=tuple(needles), window=window)


def _stored(facts: PatternFacts) -> tuple[Any, ...]:
    return (tuple((a.side, a.offset, bytes(sorted(a.allowed))) for a in facts.anchors), facts.needles, facts.window)


class PatternFactsCache:
    """`facts(position, regex)` from the file when it has them, analysed (and remembered) when not;
    `save()` writes the file back if anything was analysed."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_file()
        self.known: dict[Key, PatternFacts] = {}
        self.analysed = 0
        try:
            raw = marshal.loads(self.path.read_bytes())
            self.known = {(k[0], k[1]): _facts(v) for k, v in raw.items()
                          if type(k[0]) is str and type(k[1]) is bytes}
        except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError):
            self.known = {}  # absent or unusable: analyse in memory

    def facts(self, position: str, regex: bytes) -> PatternFacts:
        key = (position, regex)
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = pattern_facts(position, regex)
            self.analysed += 1
        return found

    def save(self) -> None:
        """Write the file if this process analysed a pattern; a cache that cannot be written (a
        read-only home, a full disk) is skipped silently: the next process analyses again."""
        if not self.analysed:
            return
        data = marshal.dumps({k: _stored(v) for k, v in self.known.items()})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass
