"""`guidang retention template|validate|import|list|show|diff`: the retention table itself
(归档范围和保管期限表), as a file and as the versions stored in the ledger.

Also the ways every retention command gets hold of a table (a file, a stored version by label or
hash, the version in force on a date) and prints a table's findings; flows/cli/retention/matters.py
uses them for the questions about matters (coverage, explain, due).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, echo_table, fail, load_config, open_ledger, parse_date
from flows.cli.progress_bars import progress_bar, show_progress
from schemas.findings import GuidangError, Severity

if TYPE_CHECKING:
    from retention import RetentionTable
    from schemas.config import Settings
    from schemas.findings import Finding

InFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="XLSX, CSV or YAML")]


# ---------------------------------------------------------------- tables and their findings


def finding_line(f: Finding) -> str:
    """One finding of a table or catalogue file, placed where an archivist looks: sheet, row, column."""
    d = f.details
    where = [f"{k} {d[k]}" for k in ("sheet", "row", "column") if d.get(k) not in (None, "")]
    value = f"  value {d['value']!r}" if d.get("value") not in (None, "") else ""
    return f"  {f.severity.upper():7} {', '.join(where) or f.where}{value}: {f.message}"


def split_findings(findings: Sequence[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) of a file's findings."""
    errors = [f for f in findings if f.severity == Severity.ERROR]
    return errors, [f for f in findings if f.severity == Severity.WARNING]


def echo_findings(errors: Sequence[Finding], warnings: Sequence[Finding], what: str) -> None:
    for f in [*errors, *warnings]:
        typer.echo(finding_line(f))
    typer.echo(f"{what}: {len(errors)} error(s), {len(warnings)} warning(s)")


def table_from_file(path: Path, *, as_json: bool) -> RetentionTable:
    """A draft table from a file; one with errors is shown and refused (exit 1)."""
    from retention import load_table

    loaded = load_table(path)
    if loaded.errors:
        if as_json:
            echo_json({"file": str(path), **loaded.report.to_dict()})
        else:
            echo_findings(loaded.errors, loaded.warnings, str(path))
        raise fail(f"{path}: the table has errors; fix them first", 1)
    loaded.table.version = path.name
    return loaded.table


def table_in_force(settings: Settings, on: date) -> RetentionTable:
    """The version in force on `on` among those stored in the ledger; exit 1 if there is none."""
    from night.retention_book import load_book

    try:
        with open_ledger(settings) as ledger:
            return load_book(ledger, settings).table_for(on)
    except GuidangError as exc:
        raise fail(str(exc), 1) from exc


def resolve_table(value: str, config: Path, *, as_json: bool) -> RetentionTable:
    """A version label or content hash (or its first 8+ hex digits) in the ledger, or a file."""
    path = Path(value)
    if path.is_file():
        return table_from_file(path, as_json=as_json)
    from night.retention_book import find_version, table_of

    settings = load_config(config)
    try:
        with open_ledger(settings) as ledger:
            return table_of(find_version(ledger, value))
    except GuidangError as exc:
        raise fail(f"{exc} (and no file {value!r} exists)") from exc


# ---------------------------------------------------------------- template / validate / import


def template(
    out: Annotated[Path, typer.Argument(help="the workbook to write (.xlsx)")],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The table for archivists to fill, print (A4 landscape) and submit: title, 编制单位, 编制日期 and 审批
    fields, standard headers with comments and drop-down lists, one example row."""
    if out.suffix.lower() != ".xlsx":
        raise fail(f"{out}: the template is an Excel workbook; name it *.xlsx")
    if out.exists() and not force:
        raise fail(f"{out} exists; pass --force to overwrite it")
    from retention import COLUMNS, write_template

    write_template(out)
    if as_json:
        echo_json({"written": str(out), "columns": list(COLUMNS.values())})
    else:
        typer.echo(f"template written to {out}")


def validate(file: InFile, as_json: JsonOpt = False) -> None:
    """Every error and warning of a table file, with sheet, row, column and value. Exit 1 on errors."""
    from retention import validate_table

    report = validate_table(file)
    if as_json:
        echo_json(report.to_dict())
    else:
        echo_findings(report.errors, report.warnings, str(file))
        typer.echo(f"{report.rules} valid rule(s)" + ("" if report.ok else "; the table cannot be imported"))
    if not report.ok:
        raise typer.Exit(1)


def import_(
    file: InFile,
    effective: Annotated[
        str | None, typer.Option("--effective", help="in force from this date (YYYY-MM-DD); today if absent")
    ] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Store the table as a version in the ledger, only when it has no errors (exit 1 otherwise)."""
    from night.retention_book import EffectiveDateConflict, RetentionTableInvalid, import_table
    from retention.load import ValidationReport

    eff = parse_date(effective, "--effective")
    settings = load_config(config)
    try:
        with open_ledger(settings) as ledger, progress_bar("导入 import: rows read and checked",
                                                           enabled=show_progress(as_json)) as bar:
            version, warnings, created = import_table(ledger, file, effective=eff, progress=bar.to)
    except EffectiveDateConflict as exc:
        raise fail(str(exc), 2) from exc
    except RetentionTableInvalid as exc:
        errs, warns = split_findings(exc.findings)
        if as_json:
            echo_json({"imported": False, **ValidationReport(errs, warns, 0).to_dict()})
        else:
            echo_findings(errs, warns, str(file))
        raise fail(f"{file}: {len(errs)} error(s); nothing imported", 1) from exc
    summary = {
        "imported": True,
        "created": created,
        "label": version.label,
        "content_hash": version.content_hash,
        "effective_date": version.effective_date,
        "rules": version.rule_count,
        "file_name": version.file_name,
        "warnings": ValidationReport([], list(warnings), 0).to_dict()["warnings"],
    }
    if as_json:
        echo_json(summary)
        return
    for f in warnings:
        typer.echo(finding_line(f))
    state = "stored as a new version" if created else "already stored (same content): nothing new"
    typer.echo(
        f"{file}: {state}\n  version {version.label}  content hash {version.content_hash}\n"
        f"  {version.rule_count} rule(s), effective from {version.effective_date}"
    )


# ---------------------------------------------------------------- list / show / diff


def list_(config: ConfigOpt = Path("guidang.yaml"), as_json: JsonOpt = False) -> None:
    """The versions stored in the ledger, and which one is in force today."""
    from night.retention_book import versions

    settings = load_config(config)
    with open_ledger(settings) as ledger:
        vs = versions(ledger)
    today = date.today().isoformat()
    effective = [v for v in vs if v.effective_date <= today]
    current = max(effective, key=lambda v: (v.effective_date, v.id)).label if effective else None
    rows = [
        {
            "label": v.label,
            "content_hash": v.content_hash,
            "file_name": v.file_name,
            "effective_date": v.effective_date,
            "rules": v.rule_count,
            "imported_by": v.imported_by,
            "imported_at": v.imported_at.isoformat(),
            "in_force": v.label == current,
        }
        for v in vs
    ]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        mark = "*" if r["in_force"] else " "
        typer.echo(
            f"{mark} {r['label']:5} {r['content_hash'][:12]}  生效 {r['effective_date']}  {r['rules']:5} 条  "
            f"{r['file_name']}  ({r['imported_by']}, {r['imported_at'][:19]})"
        )
    typer.echo(f"{len(rows)} version(s)" + (f"; * = in force today ({current})" if current else ""))


def show(
    version: Annotated[str, typer.Argument(help="version label (v1), content hash, or a table file")],
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """The rules of one version in the archivists' terms (Chinese headers, 永久/30年/10年)."""
    from retention import COLUMNS

    table = resolve_table(version, config, as_json=as_json)
    rules = [r.display() for r in table.rules]
    if as_json:
        echo_json({"version": table.version, "content_hash": table.content_hash, "rules": rules})
        return
    headers = ["行", *COLUMNS.values()]
    typer.echo(f"保管期限表 {table.version}  ({table.content_hash})  {len(rules)} 条")
    echo_table(headers, rules)


def diff(
    old: Annotated[str, typer.Argument(help="version label/hash or a table file")],
    new: Annotated[
        str | None, typer.Argument(help="version label/hash or a table file; absent: OLD against the version in force")
    ] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Rules added, removed and changed between two versions (or a draft file and the version in force)."""
    from retention import diff_tables

    if new is None:
        new_table = resolve_table(old, config, as_json=as_json)
        old_table = table_in_force(load_config(config), date.today())
    else:
        old_table = resolve_table(old, config, as_json=as_json)
        new_table = resolve_table(new, config, as_json=as_json)
    d = diff_tables(old_table, new_table)
    if as_json:
        echo_json(d)
        return
    s = d["summary"]
    typer.echo(
        f"{d['old_version']} → {d['new_version']}: {s['added']} added, {s['removed']} removed, "
        f"{s['changed']} changed, {s['unchanged']} unchanged"
    )
    for r in d["added"]:
        typer.echo(f"  + 行 {r['行']}: {_rule_text(r)}")
    for r in d["removed"]:
        typer.echo(f"  - 行 {r['行']}: {_rule_text(r)}")
    for c in d["changed"]:
        key = ", ".join(f"{k} {v}" for k, v in c["key"].items() if v)
        changes = "; ".join(f"{col}: {v['from']} → {v['to']}" for col, v in c["changes"].items())
        typer.echo(f"  ~ 行 {c['old_row']}→{c['new_row']} ({key}): {changes}")


def _rule_text(r: Mapping[str, Any]) -> str:
    applies = " ".join(
        f"{k} {r[k]}" for k in ("事项编码", "事项名称", "事项类型", "实施机构") if r.get(k)
    ) or "默认"
    period = f" {r['保管期限']}" if r.get("保管期限") else ""
    return f"{applies} [{r['材料类别']}] → {r['归档范围']}{period}"
