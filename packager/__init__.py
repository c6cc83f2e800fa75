"""packager: one matter's 归档信息包 — stage (A), finalize (B), check (C) — plus fixity helpers.

The public names are loaded on first use (PEP 562), so that `import packager.fixity`, which the
repositories need, does not pull in pypdf and lxml.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "QuarantineError": "packager.errors",
    "StagedMatter": "packager.stage",
    "StagedDocument": "packager.stage",
    "stage_matter": "packager.stage",
    "PackageResult": "packager.package",
    "PackageFile": "packager.package",
    "finalize_package": "packager.package",
    "discard": "packager.package",
    "CheckReport": "packager.checks",
    "CheckItem": "packager.checks",
    "Status": "packager.checks",
    "check_package": "packager.checks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'packager' has no attribute {name!r}")
