"""`guidang check` over many packages in one process: several targets, a folder holding packages, or
`--all` (every archived matter the ledger knows, read back from the repository).

Why one process: a check's own work on a package is a few tens of milliseconds, while starting the
interpreter, importing the checks and compiling the PRONOM signatures costs over a second; a
bureau checking its packages one command at a time paid that start-up for every one. Here it is
paid once. Each package is reported as `guidang check PACKAGE` reports it, then a total; a package
that cannot be read is reported as failed with the reason and the others go on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer

from flows.cli.common import echo_json, fail, load_config, open_ledger
from schemas.findings import GuidangError
from schemas.layout import METADATA_FILE

if TYPE_CHECKING:
    from packager.checks import CheckReport
    from schemas.config import Settings

LEDGER_CHUNK = 200  # matter rows read from the ledger at a time under --all (memory stays flat)


def is_package_folder(path: Path) -> bool:
    """A folder a night wrote as one matter's package: it holds a 元数据.xml at its top."""
    return (path / METADATA_FILE).is_file()


def package_folders(root: Path) -> Iterator[Path]:
    """Every package folder under `root`, in name order, without descending into a package (its
    own folders hold documents, never another package). Symbolic links are not followed."""
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_package_folder(here):
            dirnames[:] = []
            yield here
        else:
            dirnames.sort()


@dataclass
class Outcome:
    """One package's answer: its report (with the notes that fail it) or the reason it has none."""

    target: str
    report: CheckReport | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.report is not None and self.report.passed and not self.notes

    def to_dict(self) -> dict[str, Any]:
        if self.report is None:
            return {"target": self.target, "passed": False, "error": self.error}
        return {"target": self.target} | self.report.to_dict() | {"notes": self.notes, "passed": self.passed}


class _Checker:
    """Checks packages one after another in this process, sharing the settings and the repository."""

    def __init__(self, config: Path, level: str, *, need_config: bool) -> None:
        self.level = level
        self.settings: Settings | None = load_config(config) if need_config or config.exists() else None
        self._repository: Any = None

    def _now(self) -> datetime:
        tz = self.settings.timezone if self.settings else "Asia/Shanghai"
        return datetime.now(ZoneInfo(tz)).replace(microsecond=0)

    def folder(self, path: Path) -> Outcome:
        from flows.cli.check_one import check_folder

        try:
            return Outcome(str(path), check_folder(path, self.settings, self.level, self._now()))
        except (GuidangError, OSError) as exc:
            return Outcome(str(path), error=f"{path}: {type(exc).__name__}: {exc}")

    def stored(self, rec: Any) -> Outcome:
        from flows.cli.check_one import check_stored, repository_of

        if self.settings is None:
            raise fail("checking an archived matter by 档号 needs --config (the ledger and the repository)", 2)
        if self._repository is None:
            self._repository = repository_of(self.settings)
        target = rec.archival_code or rec.package_key or "?"
        if not rec.package_key:
            return Outcome(target, error=f"档号 {target}: the ledger has no package for it (state {rec.state})")
        try:
            report, notes = check_stored(self.settings, self._repository, rec, self.level, self._now())
            return Outcome(target, report, notes)
        except (GuidangError, OSError) as exc:  # PackageUnavailable, an unreadable object
            return Outcome(target, error=f"档号 {target}: {exc}")


def _ledger_records(settings: Settings) -> Iterator[Any]:
    """Every archived matter's row, a chunk at a time (the session stays small over a large ledger)."""
    from ledger import audit_queries

    with open_ledger(settings) as ledger, ledger.read() as s:
        for rows in audit_queries.verified_in_chunks(s, LEDGER_CHUNK):
            yield from rows


def _outcomes(targets: list[str], checker: _Checker, every: bool) -> Iterator[Outcome]:
    from flows.cli.check_one import record

    for target in targets:
        path = Path(target)
        if path.is_dir():
            found = [path] if is_package_folder(path) else package_folders(path)
            yield from (checker.folder(p) for p in found)
        elif path.exists():
            yield Outcome(target, error=f"{path} is not a package folder")
        elif "/" in target or target.startswith("."):
            yield Outcome(target, error=f"{target}: no such package folder")
        else:
            if checker.settings is None:
                raise fail(f"{target}: checking an archived matter by 档号 needs --config", 2)
            try:
                rec = record(checker.settings, target)
            except typer.Exit:  # record() has said why (unknown 档号) on stderr
                yield Outcome(target, error=f"档号 {target} is not in the ledger")
                continue
            yield checker.stored(rec)
    if every:
        if checker.settings is None:
            raise fail("--all needs the configuration (its ledger names the packages)", 2)
        yield from (checker.stored(rec) for rec in _ledger_records(checker.settings))


def check_many(targets: list[str], *, config: Path, level: str, every: bool, as_json: bool) -> None:
    """Check every package the targets name (and, with `every`, every archived matter), print each
    report and the total; exit 1 if any package failed or could not be checked, 2 if none was found."""
    from flows.cli.check_one import report_text

    checker = _Checker(config, level, need_config=every)
    passed: list[str] = []
    failed: list[str] = []
    reports: list[dict[str, Any]] = []
    for outcome in _outcomes(targets, checker, every):
        (passed if outcome.passed else failed).append(outcome.target)
        if as_json:
            reports.append(outcome.to_dict())
        elif outcome.report is not None:
            typer.echo(f"== {outcome.target}")
            typer.echo(report_text(outcome.report, outcome.notes) + "\n")
        else:
            typer.echo(f"== {outcome.target}\n结论: 不通过 (not checked: {outcome.error})\n")
    total = {"packages": len(passed) + len(failed), "passed": len(passed), "failed": len(failed),
             "failed_targets": failed}
    if as_json:
        echo_json({"packages": reports, "total": total})
    else:
        typer.echo(f"合计: {total['packages']} 件  通过 {len(passed)}  不通过 {len(failed)}")
        for target in failed:
            typer.echo(f"  不通过: {target}")
    if not total["packages"]:
        raise fail("no package found in " + (", ".join(targets) if targets else "the ledger"), 2)
    if failed:
        raise typer.Exit(1)
