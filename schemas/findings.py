"""Coded findings and the one error type guidang raises.

Checks collect findings rather than raising on the first problem (the ocfl-py habit), so that an
archivist sees every mistake in a table at once and a quarantined matter carries every reason. The
texts live in `schemas/codes/*.yaml`, one place for Chinese and English, so code only names codes.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One coded problem: `where` names the matter, row, field or file; `message` says what is wrong."""

    code: str
    where: str
    message: str
    severity: Severity = Severity.ERROR
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return code_text(self.code)

    def __str__(self) -> str:
        return f"[{self.code}] {self.where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = str(self.severity)
        d["title"] = self.title
        return d


class GuidangError(Exception):
    """The base of every error guidang raises on purpose; carries the findings that caused it."""

    def __init__(self, message: str, findings: list[Finding] | None = None) -> None:
        super().__init__(message)
        self.findings: list[Finding] = list(findings or [])


_CODES_LOCK = threading.Lock()
# libyaml's loader where PyYAML was built with it: the same values, parsed in C
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_codes() -> dict[str, dict[str, str]]:
    """All codes: {code: {"zh": ..., "en": ...}} merged from every file under schemas/codes/; read
    once per process, also when a night's threads all ask for them at once."""
    with _CODES_LOCK:
        return _load_codes()


@cache
def _load_codes() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    folder = resources.files("schemas") / "codes"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.load(entry.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
        for code, texts in data.items():
            if code in merged:
                raise GuidangError(f"code {code} is defined twice (second time in {entry.name})")
            merged[code] = texts
    return merged


def code_text(code: str, lang: str = "zh") -> str:
    texts = load_codes().get(code)
    if texts is None:
        return code
    return texts.get(lang) or texts.get("en") or code


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == Severity.ERROR]
