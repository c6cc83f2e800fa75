"""One package's 四性检测, from a folder or from the archive repository, and its report for people.

Shared by `guidang check` (flows/cli/check.py) and its runs over many packages
(flows/cli/check_many.py), which import it; it imports neither.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from flows.cli.common import fail, open_ledger
from schemas.findings import GuidangError, code_text

if TYPE_CHECKING:
    from connectors.repositories import Repository
    from ledger.models import MatterRecord
    from packager.checks import CheckReport
    from schemas.config import Settings

_STATUS_TEXT = {"pass": "通过", "fail": "不通过", "not_applicable": "不适用", "not_performed": "未检测"}


def record(settings: Settings, archival_code: str) -> MatterRecord:
    """The ledger row of an archived matter, or exit 2 naming the 档号."""
    from flows.cli.check_batch import unknown_code
    from ledger import audit_queries, queries

    with open_ledger(settings) as ledger, ledger.read() as s:
        rec = queries.archived_matter(s, archival_code)
        if rec is None:  # typed with ASCII hyphens for its `·`: the one it can only mean
            near = audit_queries.archived_matter_loose(s, archival_code)
            rec = near[0] if len(near) == 1 else None
        if rec is not None:
            s.expunge(rec)
    if rec is None:
        raise fail(str(unknown_code(settings, archival_code)), 2)
    if not rec.package_key:
        raise fail(f"档号 {archival_code}: the ledger has no package for it (state {rec.state})", 2)
    return rec


def repository_of(settings: Settings) -> Repository:
    from connectors.repositories import open_repository

    try:
        return open_repository(settings.repository, base_dir=settings.base_dir)
    except GuidangError as exc:
        raise fail(str(exc), 2) from exc


def _fonds_template(settings: Settings | None, fonds: str | None) -> str | None:
    if settings is None:
        return None
    for f in settings.fonds:
        if f.code == fonds:
            return f.archival_code_template
    return None


def report_text(report: CheckReport, notes: list[str]) -> str:
    """The report for people: one line per item (code, Chinese name, status, detail), findings below."""
    lines = [
        f"档号 {report.archival_code or '?'}  检测级别 {report.level}"
        + (f"  检测时间 {report.checked_at.isoformat(timespec='seconds')}" if report.checked_at else "")
    ]
    for item in report.items:
        status = str(item.status)
        mark = "warning" if item.warning else status
        lines.append(f"  {item.code:<7} {code_text(item.code)}  {_STATUS_TEXT.get(status, status)} ({mark})"
                     + (f"  {item.detail}" if item.detail else ""))
        if item.status == "fail":
            lines.extend(f"          {f.where}: {f.message}" for f in item.findings)
    lines.extend(f"  注意: {n}" for n in notes)
    missing = {i.code for i in report.missing_required}
    if report.not_performed:
        lines.append("未检测: " + ", ".join(f"{i.code}{' (必检)' if i.code in missing else ''}"
                                           for i in report.not_performed))
    failed = [i.code for i in report.failed_items] + [f"{c} 未检测" for c in sorted(missing)]
    if notes:
        failed.append("incomplete")
    lines.append(f"结论: 不通过 ({', '.join(failed)})" if failed else "结论: 通过")
    return "\n".join(lines)


def check_folder(path: Path, settings: Settings | None, level: str, checked_at: datetime) -> CheckReport:
    """The 四性检测 of a package folder, with the 档号 template of the fonds its 元数据 names."""
    from night.lookup import package_fonds
    from packager.checks import check_package
    from packager.content import content_options

    return check_package(path, level=level, archival_code_template=_fonds_template(settings, package_fonds(path)),
                         warnings=settings.check_warnings if settings else (), checked_at=checked_at,
                         content=content_options(settings))


def check_stored(settings: Settings, repository: Repository, rec: MatterRecord, level: str,
                 checked_at: datetime) -> tuple[CheckReport, list[str]]:
    """The 四性检测 of an archived matter's package, brought out of the repository; the notes say
    what makes it fail beyond the items (no completion marker). PackageUnavailable passes through."""
    from night.lookup import downloaded_package
    from packager.checks import check_package
    from packager.content import content_options
    from schemas.layout import COMPLETION_MARKER

    notes: list[str] = []
    with downloaded_package(repository, rec.package_key or "") as (folder, rels):
        if COMPLETION_MARKER not in rels:
            notes.append(f"{rec.package_key}: no {COMPLETION_MARKER} marker, the stored package is incomplete")
        report = check_package(folder, level=level, archival_code_template=_fonds_template(settings, rec.fonds),
                               warnings=settings.check_warnings, checked_at=checked_at,
                               content=content_options(settings))
    return report, notes
