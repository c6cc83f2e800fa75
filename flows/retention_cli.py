"""`guidang retention ...`: the archivists' commands over the retention table (归档范围和保管期限表).

A thin shell over retention/ and flows/retention_book (STYLE habit 10): every command takes --json,
exits 1 when it finds errors (an invalid table, uncovered catalogue entries, a matter no rule
decides) and 2 on bad usage. flows/cli.py imports this module at start-up to mount it, so heavy
imports (the ledger, openpyxl, the connectors) happen inside the commands.

`retention.explain_matter` says, group by group, which rule decided a matter; the package's
元数据.xml (保管信息: 保管期限表版本, 规则行号) must name the same version and row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ledger.store import Ledger
    from retention import RetentionTable
    from schemas.config import Settings
    from schemas.findings import Finding
    from schemas.model import Matter

retention_app = typer.Typer(
    help="归档范围和保管期限表: template, validate, import, list, show, diff, coverage, explain, due.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="guidang.yaml", envvar="GUIDANG_CONFIG")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
InFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="XLSX, CSV or YAML")]
OUT_SUFFIXES = (".xlsx", ".csv")


# ---------------------------------------------------------------- shared helpers


def _fail(message: str, code: int = 2) -> typer.Exit:
    from flows.cli import _fail as fail

    return fail(message, code)


def _settings(config: Path) -> Settings:
    from flows.cli import _settings as settings

    return settings(config)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _check_out(out: Path | None) -> None:
    """Refused before any work: an output whose format we would only discover at the end."""
    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise _fail(f"--out {out}: write .xlsx or .csv")


@contextmanager
def _ledger(settings: Settings) -> Iterator[Ledger]:
    from ledger.store import Ledger

    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        yield ledger


def _finding_line(f: Finding) -> str:
    d = f.details
    where = [f"{k} {d[k]}" for k in ("sheet", "row", "column") if d.get(k) not in (None, "")]
    value = f"  value {d['value']!r}" if d.get("value") not in (None, "") else ""
    return f"  {f.severity.upper():7} {', '.join(where) or f.where}{value}: {f.message}"


def _print_findings(errors: Sequence[Finding], warnings: Sequence[Finding], what: str) -> None:
    for f in [*errors, *warnings]:
        typer.echo(_finding_line(f))
    typer.echo(f"{what}: {len(errors)} error(s), {len(warnings)} warning(s)")


def _write_rows(path: Path, headers: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """A list for people: CSV (UTF-8 with BOM, so Excel shows the Chinese) or XLSX, one header row."""
    n = 0
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(headers)
            for row in rows:
                w.writerow(["" if row.get(h) is None else row.get(h) for h in headers])
                n += 1
        return n
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(path.stem[:31] or "sheet")
    ws.append(list(headers))
    for row in rows:
        ws.append([row.get(h) for h in headers])
        n += 1
    wb.save(path)
    return n


def _load_file_table(path: Path, *, as_json: bool) -> RetentionTable:
    """A draft table from a file; one with errors is shown and refused (exit 1)."""
    from retention import load_table

    loaded = load_table(path)
    if loaded.errors:
        if as_json:
            _echo_json({"file": str(path), **loaded.report.to_dict()})
        else:
            _print_findings(loaded.errors, loaded.warnings, str(path))
        raise _fail(f"{path}: the table has errors; fix them first", 1)
    loaded.table.version = path.name
    return loaded.table


def _table_in_force(settings: Settings, on: date) -> RetentionTable:
    from flows.retention_book import load_book
    from schemas.findings import GuidangError

    try:
        with _ledger(settings) as ledger:
            return load_book(ledger, settings).table_for(on)
    except GuidangError as exc:
        raise _fail(str(exc), 1) from exc


def _resolve_table(value: str, config: Path, *, as_json: bool) -> RetentionTable:
    """A version label or content hash (or its first 8+ hex digits) in the ledger, or a file."""
    path = Path(value)
    if path.is_file():
        return _load_file_table(path, as_json=as_json)
    from flows.retention_book import find_version, table_of
    from schemas.findings import GuidangError

    settings = _settings(config)
    try:
        with _ledger(settings) as ledger:
            return table_of(find_version(ledger, value))
    except GuidangError as exc:
        raise _fail(f"{exc} (and no file {value!r} exists)") from exc


# ---------------------------------------------------------------- template / validate / import


@retention_app.command("template")
def template(
    out: Annotated[Path, typer.Argument(help="the workbook to write (.xlsx)")],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
    as_json: JsonOpt = False,
) -> None:
    """An empty table for archivists: standard headers with comments and drop-down lists."""
    if out.suffix.lower() != ".xlsx":
        raise _fail(f"{out}: the template is an Excel workbook; name it *.xlsx")
    if out.exists() and not force:
        raise _fail(f"{out} exists; pass --force to overwrite it")
    from retention import COLUMNS, write_template

    write_template(out)
    if as_json:
        _echo_json({"written": str(out), "columns": list(COLUMNS.values())})
    else:
        typer.echo(f"template written to {out}")


@retention_app.command("validate")
def validate(file: InFile, as_json: JsonOpt = False) -> None:
    """Every error and warning of a table file, with sheet, row, column and value. Exit 1 on errors."""
    from retention import validate_table

    report = validate_table(file)
    if as_json:
        _echo_json(report.to_dict())
    else:
        _print_findings(report.errors, report.warnings, str(file))
        typer.echo(f"{report.rules} valid rule(s)" + ("" if report.ok else "; the table cannot be imported"))
    if not report.ok:
        raise typer.Exit(1)


@retention_app.command("import")
def import_(
    file: InFile,
    effective: Annotated[
        str | None, typer.Option("--effective", help="in force from this date (YYYY-MM-DD); today if absent")
    ] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Store the table as a version in the ledger, only when it has no errors (exit 1 otherwise)."""
    from flows.retention_book import RetentionTableInvalid, import_table
    from retention.load import ValidationReport
    from schemas.findings import Severity

    eff = _parse_date(effective, "--effective")
    settings = _settings(config)
    try:
        with _ledger(settings) as ledger:
            version, warnings, created = import_table(ledger, file, effective=eff)
    except RetentionTableInvalid as exc:
        errs = [f for f in exc.findings if f.severity == Severity.ERROR]
        warns = [f for f in exc.findings if f.severity == Severity.WARNING]
        if as_json:
            _echo_json({"imported": False, **ValidationReport(errs, warns, 0).to_dict()})
        else:
            _print_findings(errs, warns, str(file))
        raise _fail(f"{file}: {len(errs)} error(s); nothing imported", 1) from exc
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
        _echo_json(summary)
        return
    for f in warnings:
        typer.echo(_finding_line(f))
    state = "stored as a new version" if created else "already stored (same content): nothing new"
    typer.echo(
        f"{file}: {state}\n  version {version.label}  content hash {version.content_hash}\n"
        f"  {version.rule_count} rule(s), effective from {version.effective_date}"
    )


# ---------------------------------------------------------------- list / show / diff


@retention_app.command("list")
def list_(config: ConfigOpt = Path("guidang.yaml"), as_json: JsonOpt = False) -> None:
    """The versions stored in the ledger, and which one is in force today."""
    from flows.retention_book import versions

    settings = _settings(config)
    with _ledger(settings) as ledger:
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
        _echo_json(rows)
        return
    for r in rows:
        mark = "*" if r["in_force"] else " "
        typer.echo(
            f"{mark} {r['label']:5} {r['content_hash'][:12]}  生效 {r['effective_date']}  {r['rules']:5} 条  "
            f"{r['file_name']}  ({r['imported_by']}, {r['imported_at'][:19]})"
        )
    typer.echo(f"{len(rows)} version(s)" + (f"; * = in force today ({current})" if current else ""))


@retention_app.command("show")
def show(
    version: Annotated[str, typer.Argument(help="version label (v1), content hash, or a table file")],
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """The rules of one version in the archivists' terms (Chinese headers, 永久/30年/10年)."""
    from retention import COLUMNS

    table = _resolve_table(version, config, as_json=as_json)
    rules = [r.display() for r in table.rules]
    if as_json:
        _echo_json({"version": table.version, "content_hash": table.content_hash, "rules": rules})
        return
    headers = ["行", *COLUMNS.values()]
    typer.echo(f"保管期限表 {table.version}  ({table.content_hash})  {len(rules)} 条")
    typer.echo("\t".join(headers))
    for r in rules:
        typer.echo("\t".join("" if r.get(h) is None else str(r.get(h)) for h in headers))


@retention_app.command("diff")
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
        new_table = _resolve_table(old, config, as_json=as_json)
        old_table = _table_in_force(_settings(config), date.today())
    else:
        old_table = _resolve_table(old, config, as_json=as_json)
        new_table = _resolve_table(new, config, as_json=as_json)
    d = diff_tables(old_table, new_table)
    if as_json:
        _echo_json(d)
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


# ---------------------------------------------------------------- coverage


def _catalogue_fields(entry: Any) -> dict[str, str]:
    """One catalogue entry (a CatalogueItem or a row keyed by the Chinese headers) as plain text."""
    if isinstance(entry, Mapping):
        get = entry.get
        return {k: str(get(k) or "").strip() for k in ("事项编码", "事项名称", "事项类型", "实施机构")}
    return {
        "事项编码": entry.service_code,
        "事项名称": entry.service_name or "",
        "事项类型": entry.matter_type or "",
        "实施机构": entry.agency or "",
    }


@retention_app.command("coverage")
def coverage_cmd(
    catalogue: Annotated[
        Path | None, typer.Option("--catalogue", exists=True, dir_okay=False, help="事项目录 file (XLSX/CSV/YAML)")
    ] = None,
    from_source: Annotated[
        str | None, typer.Option("--from-source", help="fetch the 事项目录 from this unified source")
    ] = None,
    table_file: Annotated[
        Path | None, typer.Option("--table", exists=True, dir_okay=False, help="a draft table instead of the ledger's")
    ] = None,
    on: Annotated[str | None, typer.Option("--date", help="judge on this date (YYYY-MM-DD); today if absent")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the uncovered entries (.xlsx or .csv)")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Which catalogue entries no rule applies to (they would be quarantined). Exit 1 if any."""
    if (catalogue is None) == (from_source is None):
        raise _fail("give exactly one of --catalogue FILE and --from-source NAME")
    _check_out(out)
    on_date = _parse_date(on, "--date") or date.today()
    settings = _settings(config) if (from_source is not None or table_file is None) else None

    from retention import coverage, is_covered, load_catalogue
    from schemas.findings import GuidangError, Severity

    findings: list[Finding] = []
    entries: list[Any]
    if catalogue is not None:
        entries, findings = load_catalogue(catalogue)
    else:
        assert settings is not None and from_source is not None
        try:
            source = settings.source(from_source)
        except (GuidangError, KeyError, ValueError) as exc:
            raise _fail(str(exc)) from exc
        if source.kind != "unified":
            raise _fail(f"source {from_source} is a {source.kind} source; only the unified system has a 事项目录")
        from connectors.sources.unified import fetch_catalogue

        try:
            entries = list(fetch_catalogue(source))
        except GuidangError as exc:
            raise _fail(f"source {from_source}: {exc}", 1) from exc
    table = _load_file_table(table_file, as_json=as_json) if table_file else _table_in_force(settings, on_date)

    report = coverage(table, entries, on_date)
    result = report.to_dict()
    errs = [f for f in findings if f.severity == Severity.ERROR]
    warns = [f for f in findings if f.severity == Severity.WARNING]
    result["catalogue_errors"] = [{"message": str(f), **{k: f.details.get(k) for k in ("row", "column", "value")}}
                                  for f in errs]
    uncovered_rows = [
        fields
        for fields in map(_catalogue_fields, entries)
        if not is_covered(table, fields["事项编码"], fields["事项类型"] or None, fields["实施机构"] or None, on_date)
    ]
    if out is not None:
        _write_rows(out, ("事项编码", "事项名称", "事项类型", "实施机构"), uncovered_rows)
        result["out"] = str(out)
    if as_json:
        _echo_json(result)
    else:
        for f in [*errs, *warns]:
            typer.echo(_finding_line(f))
        typer.echo(
            f"保管期限表 {report.table_version} on {report.on_date}: {report.catalogue} catalogue entries, "
            f"{report.covered} covered, {len(report.uncovered)} uncovered"
        )
        for name, bucket in (("实施机构", report.by_agency), ("事项类型", report.by_matter_type)):
            typer.echo(f"by {name}:")
            for key, counts in sorted(bucket.items()):
                typer.echo(f"  {key or '(blank)'}: {counts['covered']}/{counts['catalogue']} covered")
        for row in uncovered_rows:
            typer.echo(f"  uncovered {row['事项编码']}  {row['事项名称']}  {row['事项类型']}  {row['实施机构']}")
        if out is not None:
            typer.echo(f"{len(uncovered_rows)} uncovered entr{'y' if len(uncovered_rows) == 1 else 'ies'} "
                       f"written to {out}")
    if report.uncovered or errs:
        raise typer.Exit(1)


# ---------------------------------------------------------------- explain


def _matter_from_source_or_ledger(settings: Settings, source: str, project_id: str) -> tuple[Matter, str, Any]:
    """The matter as the source has it now; the ledger's stored copy when the source cannot be reached
    (or no longer has it). Returns (matter, where it came from, the newest MatterRecord or None)."""
    from sqlalchemy import select

    from connectors.sources import open_source
    from ledger.models import MatterRecord
    from schemas.errors import SourceUnavailable
    from schemas.findings import GuidangError
    from schemas.model import Matter, mask_text

    try:
        config = settings.source(source)
    except (GuidangError, KeyError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    with _ledger(settings) as ledger, ledger.read() as s:
        record = s.scalars(
            select(MatterRecord)
            .where(MatterRecord.source == source, MatterRecord.project_id == project_id)
            .order_by(MatterRecord.version.desc())
        ).first()
        if record is not None:
            s.expunge(record)
    problem = ""
    try:
        conn = open_source(config, base_dir=settings.base_dir)
        try:
            fetched = conn.fetch_matter(project_id)
        finally:
            conn.close()
    except (SourceUnavailable, OSError) as exc:
        fetched, problem = None, f"source {source} is not reachable ({mask_text(str(exc))})"
    if isinstance(fetched, Matter):
        return fetched, f"source {source}", record
    if fetched is not None:
        problem = f"the source's record is invalid: {'; '.join(fetched.problems)}"
    elif not problem:
        problem = f"source {source} has no matter {project_id}"
    if record is None:
        raise _fail(f"{problem}, and the ledger holds no matter {source}/{project_id}", 1)
    return Matter.model_validate(record.record), f"ledger ({problem})", record


@retention_app.command("explain")
def explain_cmd(
    source: Annotated[str | None, typer.Option("--source", "-s", help="source name (with --matter)")] = None,
    matter_id: Annotated[str | None, typer.Option("--matter", help="办件编号 (PROJID)")] = None,
    code: Annotated[str | None, typer.Option("--code", help="事项编码")] = None,
    matter_type: Annotated[str | None, typer.Option("--type", help="事项类型: code (01) or name (行政许可)")] = None,
    agency: Annotated[str | None, typer.Option("--agency", help="实施机构")] = None,
    group: Annotated[str | None, typer.Option("--group", help="材料类别: 申报, 过程, 结果 or 全部")] = None,
    on: Annotated[str | None, typer.Option("--date", help="judge on this date (YYYY-MM-DD); today if absent")] = None,
    table_file: Annotated[
        Path | None, typer.Option("--table", exists=True, dir_okay=False, help="a draft table instead of the ledger's")
    ] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """The deciding rule, the rules that also matched and lost, and why: for one matter (--source
    --matter) or for a matter type (--code/--type/--agency/--group/--date). Exit 1 if no rule decides."""
    by_matter = source is not None or matter_id is not None
    by_type = any(v is not None for v in (code, matter_type, agency, group, on))
    if by_matter and by_type:
        raise _fail("--source/--matter explain a matter; --code/--type/--agency/--group/--date a matter type: not both")
    if by_matter and (source is None or matter_id is None):
        raise _fail("--source and --matter go together")
    if not by_matter and code is None and matter_type is None:
        raise _fail("give --source and --matter, or --code (and/or --type)")
    on_date = _parse_date(on, "--date")

    if by_matter:
        assert source is not None and matter_id is not None
        _explain_matter_cmd(source, matter_id, table_file, config, as_json)
        return
    table = (
        _load_file_table(table_file, as_json=as_json)
        if table_file
        else _table_in_force(_settings(config), on_date or date.today())
    )
    from retention import explain

    try:
        result = explain(
            table,
            service_code=code,
            matter_type=matter_type,
            agency=agency,
            group=group,
            on_date=on_date or date.today(),
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        _echo_json(result)
    else:
        _print_explanation(result)
    if result["status"] != "decided":
        raise typer.Exit(1)


def _explain_matter_cmd(source: str, matter_id: str, table_file: Path | None, config: Path, as_json: bool) -> None:
    settings = _settings(config)
    matter, origin, record = _matter_from_source_or_ledger(settings, source, matter_id)
    on = matter.completed_at.date()
    table = _load_file_table(table_file, as_json=as_json) if table_file else _table_in_force(settings, on)
    from retention import explain_matter

    result = explain_matter(table, matter)
    result["from"] = origin
    if record is not None:
        result["ledger"] = {
            "state": record.state,
            "archival_code": record.archival_code,
            "package_key": record.package_key,
            "retention_version": record.retention_version,
            "retention_row": record.retention_row,
            "agrees": record.retention_version is None
            or (
                result["decision"] is not None
                and (record.retention_version, record.retention_row) == (table.version, result["decision"]["row"])
            ),
        }
    if as_json:
        _echo_json(result)
    else:
        typer.echo(
            f"matter {result['matter']} (from {origin}): 事项编码 {matter.service_code}, 事项类型 "
            f"{matter.matter_type}, 实施机构 {matter.agency}, 办结 {result['date']}"
        )
        typer.echo(f"retention table version in force on {result['date']}: {table.version}")
        typer.echo(result["message"])
        if result["decision"]:
            dec = result["decision"]
            typer.echo(
                f"  元数据.xml 保管信息 should read: 保管期限表版本 {table.version}, 规则行号 {dec['row']}, "
                f"保管期限 {dec['period'] or '-'}, 到期鉴定日期 {dec['disposition_date'] or '-'}"
                + (f", 不归档材料类别 {'、'.join(dec['excluded_groups'])}" if dec["excluded_groups"] else "")
            )
        for name, e in result["groups"].items():
            typer.echo(f"[{name}]")
            _print_explanation(e, indent="  ")
        led = result.get("ledger")
        if led and led["retention_version"] is not None:
            typer.echo(
                f"ledger: {led['state']} {led['archival_code'] or ''} decided by {led['retention_version']} "
                f"row {led['retention_row']}" + ("" if led["agrees"] else "  ← DIFFERS from this explanation")
            )
    if result["status"] != "decided":
        raise typer.Exit(1)


def _print_explanation(e: Mapping[str, Any], indent: str = "") -> None:
    typer.echo(f"{indent}{e['message']}")
    if e["decision"]:
        d = e["decision"]
        typer.echo(f"{indent}  decides: 行 {d['row']} ({d['level_name']}) {_record_text(d)}")
    for r in e["ambiguous"]:
        typer.echo(f"{indent}  disagrees: 行 {r['row']} ({r['level_name']}) {_record_text(r)}")
    for r in e["lost"]:
        typer.echo(f"{indent}  lost: 行 {r['row']} ({r['level_name']}) {_record_text(r)}: {r['why']}")
    for r in e["not_in_force"]:
        typer.echo(f"{indent}  ignored: 行 {r['row']} ({r['level_name']}) {_record_text(r)}: {r['why']}")
    for r in e.get("group_rules", []):
        typer.echo(f"{indent}  for 材料类别 {r['group']} only: 行 {r['row']} {_record_text(r)}")


def _record_text(r: Mapping[str, Any]) -> str:
    from schemas.model import RetentionPeriod

    period = f" {RetentionPeriod(r['period']).label}" if r.get("period") else ""
    basis = f"  依据: {r['basis']}" if r.get("basis") else ""
    return f"{r['scope']}{period}{basis}"


# ---------------------------------------------------------------- due


DUE_HEADERS = ("档号", "题名", "保管期限", "办结日期", "到期日期", "保管期限表版本", "规则行号")


@retention_app.command("due")
def due(
    before: Annotated[str, typer.Option("--before", help="list what falls due before this date (YYYY-MM-DD)")],
    out: Annotated[Path | None, typer.Option("--out", help="write the list (.xlsx or .csv)")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """到期鉴定清单: archived records whose disposition date is before DATE (永久 never falls due)."""
    limit = _parse_date(before, "--before")
    assert limit is not None
    _check_out(out)
    settings = _settings(config)
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from ledger.models import MatterRecord, MatterState
    from schemas.model import RetentionPeriod

    tz = ZoneInfo(settings.timezone)
    with _ledger(settings) as ledger, ledger.read() as s:
        records = s.scalars(
            select(MatterRecord)
            .where(
                MatterRecord.state == MatterState.VERIFIED.value,
                MatterRecord.disposition_date.is_not(None),
                MatterRecord.disposition_date < limit.isoformat(),
            )
            .order_by(MatterRecord.disposition_date, MatterRecord.archival_code)
        ).all()
        rows = [
            {
                "档号": r.archival_code,
                "题名": r.title,
                "保管期限": RetentionPeriod(r.retention_period).label if r.retention_period else None,
                "办结日期": r.completed_at.astimezone(tz).date().isoformat(),
                "到期日期": r.disposition_date,
                "保管期限表版本": r.retention_version,
                "规则行号": r.retention_row,
            }
            for r in records
            if r.retention_period != RetentionPeriod.PERMANENT.value
        ]
    if out is not None:
        _write_rows(out, DUE_HEADERS, rows)
    if as_json:
        _echo_json({"before": limit.isoformat(), "count": len(rows), "records": rows,
                    **({"out": str(out)} if out else {})})
        return
    typer.echo(f"到期鉴定清单: {len(rows)} record(s) due before {limit.isoformat()}")
    typer.echo("\t".join(DUE_HEADERS))
    for row in rows:
        typer.echo("\t".join("" if row[h] is None else str(row[h]) for h in DUE_HEADERS))
    if out is not None:
        typer.echo(f"written to {out}")
