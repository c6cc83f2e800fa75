"""`guidang check` for a DA/T 93 batch (folder or id) and the 档号 hint; custody/batch_check.py checks.

Kept beside flows/cli/check.py so that command stays about packages: `check_command` hands a target
here first, and goes on with a package when this says it is not a batch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flows.cli.common import echo_json, fail, load_config, open_ledger
from schemas.errors import InvariantBroken
from schemas.findings import GuidangError, code_text

if TYPE_CHECKING:
    from schemas.config import Settings

BATCH_ID = re.compile(r"[A-Za-z0-9_]+-\d{8}-[0-9a-f]{8}")


def check_batch_target(target: str, config: Path, as_json: bool) -> bool:
    """Check `target` if it is a batch folder or batch id (then exit 0/1/2 as the checks say); False
    if it is neither, for the package check to take it."""
    from packager.transfer import README_FILE

    path = Path(target)
    if not (path.is_dir() and (path / README_FILE).is_file()) and not (
            BATCH_ID.fullmatch(target) and not path.exists()):
        return False  # a package: the batch checks (the ledger, the chain) are not even imported
    from custody.batch_check import check_batch, is_batch_folder

    if is_batch_folder(path):
        settings = load_config(config) if config.exists() else None
        batch_id = path.resolve().name
        if settings is None:
            report = check_batch(path, batch_id, ledger=None, repository=None)
        else:
            from flows.cli.audit import open_archive

            with open_ledger(settings) as ledger:
                report = check_batch(path, batch_id, ledger=ledger, repository=open_archive(settings, required=False))
    elif BATCH_ID.fullmatch(target) and not path.exists():
        from flows.cli.audit import open_archive
        from ledger import audit_queries
        from night.lookup import PackageUnavailable, downloaded_package
        from schemas.layout import transfer_key

        settings = load_config(config)
        with open_ledger(settings) as ledger:
            with ledger.read() as s:
                known = audit_queries.batch_event(s, target) or audit_queries.batch_event(
                    s, target, "transfer-batch-begun")
            if known is None:
                raise fail(f"batch {target} is not in the ledger", 2)
            repository = open_archive(settings, required=True)
            if repository is None:
                raise InvariantBroken("open_archive(required=True) returned no repository")
            try:
                with downloaded_package(repository, transfer_key(target)) as (folder, rels):
                    if README_FILE not in rels:
                        raise fail(f"batch {target}: the repository holds no {transfer_key(target)}/{README_FILE}", 1)
                    report = check_batch(folder, target, ledger=ledger, repository=repository)
                    report.folder = transfer_key(target)
            except PackageUnavailable as exc:
                raise fail(f"batch {target}: {exc}", 1) from exc
    else:
        return False
    if as_json:
        echo_json(report.to_dict())
    else:
        typer.echo(f"批次 {report.batch_id}  {report.folder}  {report.packages} 件"
                   + ("" if report.checked_against_ledger else "  (not checked against a ledger: no --config)"))
        for f in report.findings:
            typer.echo(f"  {f}  ({code_text(f.code)})")
        typer.echo("结论: 通过" if report.passed else f"结论: 不通过 ({len(report.findings)} problem(s))")
    if not report.passed:
        raise typer.Exit(1)
    return True


def unknown_code(settings: Settings, archival_code: str) -> GuidangError:
    """The message for a 档号 the ledger lacks: the one it meant when only separators differ, or a hint."""
    from ledger import audit_queries

    with open_ledger(settings) as ledger, ledger.read() as s:
        near = [r.archival_code for r in audit_queries.archived_matter_loose(s, archival_code)]
    hint = ""
    if near:
        hint = f"; did you mean {', '.join(c for c in near if c)}?"
    elif "-" in archival_code and "·" not in archival_code:
        hint = "; a 档号 separates 年度, 保管期限 and the like with '·' (U+00B7), not '-'"
    return GuidangError(f"档号 {archival_code} is not in the ledger{hint}")
