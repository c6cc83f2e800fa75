"""packager: one matter's 归档信息包 — stage (A), finalize (B), check (C) — and the DA/T 93 batch.

Plain imports: the hashing helper the repositories need lives in `schemas.digest`, so importing
the packager is only ever done by code that packages (and may pay for pypdf and lxml).
"""

from packager.check_report import CheckItem, CheckReport, Status
from packager.checks import check_package
from packager.package import PackageFile, PackageResult, discard, finalize_package, retire
from packager.quarantine_error import QuarantineError
from packager.stage import StagedDocument, StagedMatter, stage_matter

__all__ = [
    "CheckItem",
    "CheckReport",
    "PackageFile",
    "PackageResult",
    "QuarantineError",
    "StagedDocument",
    "StagedMatter",
    "Status",
    "check_package",
    "discard",
    "finalize_package",
    "retire",
    "stage_matter",
]
