"""The package manifests (manifest-sm3.txt, manifest-sha256.txt): their format, written and read once.

bagit's format: one "<hex digest>  <relative path>" line per file, sorted by path, LF-terminated,
UTF-8. The packager writes them; the 四性检测 checks and the EEP export read them; so the line
grammar, the path gate and what counts as a bad line live here and nowhere else. Reading collects
problems instead of raising, so a check can report every bad line at once and an export can
refuse on the first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.findings import GuidangError
from schemas.layout import is_dangerous_path

_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """One bad line: its 1-based number, its text (cut to 120 characters) and what is wrong with it."""

    line: int
    text: str
    message: str


@dataclass(slots=True)
class Manifest:
    """`entries` maps each listed path to its digest (a path listed twice keeps its last digest)."""

    entries: dict[str, str] = field(default_factory=dict)
    problems: list[ManifestProblem] = field(default_factory=list)


def manifest_text(entries: Iterable[tuple[str, str]]) -> str:
    """The manifest for `(relative path, digest)` pairs; refuses a path that would escape the package."""
    lines = []
    for rel, digest in sorted(entries):
        if is_dangerous_path(rel):
            raise GuidangError(f"refusing to list dangerous path {rel!r} in a manifest")
        lines.append(f"{digest}  {rel}\n")
    return "".join(lines)


def read_manifest(lines: Iterable[str]) -> Manifest:
    """Parse manifest lines (as a text file iterates them, or `text.split("\\n")`); blank lines are
    skipped, every other line must be a digest, two spaces and a safe relative path."""
    out = Manifest()
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if not line:
            continue
        m = _LINE.fullmatch(line)
        text = line[:120]
        if m is None:
            out.problems.append(ManifestProblem(lineno, text, f"malformed line {text!r}"))
            continue
        digest, rel = m.groups()
        if is_dangerous_path(rel):
            out.problems.append(ManifestProblem(lineno, text, f"dangerous path {rel!r}"))
            continue
        if rel in out.entries:
            out.problems.append(ManifestProblem(lineno, text, f"{rel} is listed twice"))
        out.entries[rel] = digest
    return out
