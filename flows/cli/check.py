"""`guidang check` (re-run the 四性检测) and `guidang export eep` (DA/T 48 EEP of an archived matter).

Both take a package either as a folder or as a 档号 looked up in the ledger and read from the
archive repository (fs or s3) under the ledger row's package_key (night/lookup.py brings it out).
Exit codes: 0 done, 1 a check or the export failed, 2 bad usage (unknown 档号, a path that does not
exist, configuration).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from flows.cli.check_one import check_folder, check_stored, record, report_text, repository_of
from flows.cli.common import ConfigOpt, JsonOpt, echo_json, fail, load_config
from schemas.findings import GuidangError

export_app = typer.Typer(help="Export archived matters in exchange formats (DA/T 48 EEP).", no_args_is_help=True)


def check_command(
    targets: Annotated[list[str] | None, typer.Argument(
        metavar="PATH|档号|BATCH...",
        help="package folders, archived matters' 档号, a batch folder or id, or folders holding packages")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    quick: Annotated[bool, typer.Option("--quick", help="structure, counts and listings only; no hashing")] = False,
    every: Annotated[bool, typer.Option("--all", help="every package the ledger knows (archived matters)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-run the 四性检测 (DA/T 70) on a package folder or on an archived matter by 档号; or check a
    DA/T 93 batch (folder or id): 说明文件, 目录文件, 登记表 against the packages and the ledger.

    Several targets, a folder holding packages (an archive repository's root, say) or --all check
    many packages in one process: each reported as one alone would be, then a total (see
    docs/check-many.md). Prints the items not performed (未检测), marking those the configuration
    requires. Exit 1 if an item fails, a required item was not performed, or a stored package lacks
    its completion marker; 2 for a path that does not exist or a 档号 not in the ledger."""
    from flows.cli.check_batch import check_batch_target
    from flows.cli.check_many import check_many, is_package_folder
    from night.lookup import PackageUnavailable

    targets = targets or []
    if every or len(targets) != 1:
        if not every and not targets:
            raise fail("name a package folder, a 档号, a batch or a folder of packages, or give --all", 2)
        check_many(targets, config=config, level="quick" if quick else "full", every=every, as_json=as_json)
        return
    target = targets[0]
    if check_batch_target(target, config, as_json):  # a DA/T 93 batch folder or batch id
        return
    path = Path(target)
    if path.is_dir() and not is_package_folder(path):  # a folder of packages: each one, then a total
        check_many(targets, config=config, level="quick" if quick else "full", every=False, as_json=as_json)
        return
    level = "quick" if quick else "full"
    notes: list[str] = []
    checked_at = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0)
    if path.exists():
        if not path.is_dir():
            raise fail(f"{path} is not a package folder", 2)
        report = check_folder(path, load_config(config) if config.exists() else None, level, checked_at)
    elif "/" in target or target.startswith("."):
        raise fail(f"{target}: no such package folder", 2)
    else:
        settings = load_config(config)
        rec = record(settings, target)
        repository = repository_of(settings)
        try:
            report, notes = check_stored(settings, repository, rec, level,
                                         checked_at.astimezone(ZoneInfo(settings.timezone)))
        except PackageUnavailable as exc:
            raise fail(f"档号 {rec.archival_code}: {exc}", 1) from exc
    if as_json:
        echo_json(report.to_dict() | {"notes": notes})
    else:
        typer.echo(report_text(report, notes))
    if not report.passed or notes:
        raise typer.Exit(1)


@export_app.command("eep")
def export_eep_command(
    archival_code: Annotated[str, typer.Argument(metavar="档号", help="the 档号 of an archived matter")],
    out: Annotated[Path, typer.Argument(metavar="OUT.xml", help="the EEP file to write")],
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Write the DA/T 48 EEP (电子文件封装包, 原始型) of an archived matter, streaming from the repository.

    Every document's SHA-256 is checked against the package's manifest while streaming; on a mismatch
    nothing is left at OUT.xml and the exit code is 1. Files under 100 MB are validated against
    schemas/eep.xsd afterwards (larger ones would need the whole tree in memory and are not)."""
    from packager.eep import VALIDATE_LIMIT_BYTES, EepError, export_eep_from_repository, validate_eep

    if out.is_dir():
        raise fail(f"{out} is a folder; name the EEP file to write", 2)
    if not out.parent.is_dir():
        raise fail(f"{out.parent}: no such folder", 2)
    settings = load_config(config)
    rec = record(settings, archival_code)
    repository = repository_of(settings)
    creator = next((f.name for f in settings.fonds if f.code == rec.fonds), rec.agency)
    created_at = datetime.now(ZoneInfo(settings.timezone)).replace(microsecond=0)
    try:
        result = export_eep_from_repository(repository, rec.package_key or "", out, creator=creator,
                                            created_at=created_at)
    except GuidangError as exc:  # EepError, RepositoryError (missing object, unreadable store)
        kind = "EEP" if isinstance(exc, EepError) else "repository"
        raise fail(f"档号 {archival_code}: {kind}: {exc}; nothing written to {out}", 1) from exc
    validated: bool | None = None
    problems = []
    if result.size < VALIDATE_LIMIT_BYTES:
        problems = validate_eep(out)
        validated = not problems
    summary = {
        "archival_code": result.archival_code, "path": str(out), "documents": result.documents,
        "content_bytes": result.content_bytes, "size": result.size, "validated": validated,
        "problems": [p.to_dict() for p in problems],
    }
    if as_json:
        echo_json(summary)
    else:
        typer.echo(f"{out}: EEP of {result.archival_code}, {result.documents} document(s), "
                   f"{result.content_bytes} content bytes, {result.size} bytes written")
        if validated is None:
            typer.echo(f"not validated against eep.xsd: larger than {VALIDATE_LIMIT_BYTES // (1024 * 1024)} MB "
                       "(validation needs the whole file in memory)")
        elif validated:
            typer.echo("valid against eep.xsd")
        for p in problems:
            typer.echo(f"  INVALID {p.where}: {p.message}")
    if problems:
        raise typer.Exit(1)
