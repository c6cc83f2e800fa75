"""`guidang retention coverage|explain|due`: the retention table applied to matters. Which catalogue
entries (事项目录) no rule covers, which rule decides a matter (or a matter type) and why, and which
archived records fall due for appraisal (到期鉴定).

`retention.explain_matter` says, group by group, which rule decided a matter; the package's
元数据.xml (保管信息: 保管期限表版本, 规则行号) must name the same version and row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import (
    ConfigOpt,
    JsonOpt,
    check_out,
    echo_json,
    echo_table,
    fail,
    load_config,
    open_ledger,
    parse_date,
    source_config,
    write_rows,
)
from flows.cli.retention.tables import finding_line, split_findings, table_from_file, table_in_force
from schemas.errors import InvariantBroken
from schemas.findings import GuidangError

if TYPE_CHECKING:
    from schemas.findings import Finding

TableOpt = Annotated[
    Path | None, typer.Option("--table", exists=True, dir_okay=False, help="a draft table instead of the ledger's")
]
DateOpt = Annotated[str | None, typer.Option("--date", help="judge on this date (YYYY-MM-DD); today if absent")]


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


def coverage_cmd(
    catalogue: Annotated[
        Path | None, typer.Option("--catalogue", exists=True, dir_okay=False, help="事项目录 file (XLSX/CSV/YAML)")
    ] = None,
    from_source: Annotated[
        str | None, typer.Option("--from-source", help="fetch the 事项目录 from this unified source")
    ] = None,
    table_file: TableOpt = None,
    on: DateOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the uncovered entries (.xlsx or .csv)")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """Which catalogue entries no rule applies to (they would be quarantined). Exit 1 if any."""
    if (catalogue is None) == (from_source is None):
        raise fail("give exactly one of --catalogue FILE and --from-source NAME")
    check_out(out)
    on_date = parse_date(on, "--date") or date.today()
    settings = load_config(config) if (from_source is not None or table_file is None) else None

    from retention import coverage, is_covered, load_catalogue

    findings: list[Finding] = []
    entries: list[Any]
    if catalogue is not None:
        entries, findings = load_catalogue(catalogue)
    else:
        if settings is None or from_source is None:
            raise InvariantBroken("coverage from a source without its settings")
        source = source_config(settings, from_source)
        if source.kind != "unified":
            raise fail(f"source {from_source} is a {source.kind} source; only the unified system has a 事项目录")
        from connectors.sources.unified import fetch_catalogue

        try:
            entries = list(fetch_catalogue(source))
        except GuidangError as exc:
            raise fail(f"source {from_source}: {exc}", 1) from exc
    table = table_from_file(table_file, as_json=as_json) if table_file else table_in_force(settings, on_date)

    report = coverage(table, entries, on_date)
    result = report.to_dict()
    errs, warns = split_findings(findings)
    result["catalogue_errors"] = [{"message": str(f), **{k: f.details.get(k) for k in ("row", "column", "value")}}
                                  for f in errs]
    uncovered_rows = [
        fields
        for fields in map(_catalogue_fields, entries)
        if not is_covered(table, fields["事项编码"], fields["事项类型"] or None, fields["实施机构"] or None, on_date)
    ]
    if out is not None:
        write_rows(out, ("事项编码", "事项名称", "事项类型", "实施机构"), uncovered_rows)
        result["out"] = str(out)
    if as_json:
        echo_json(result)
    else:
        for f in [*errs, *warns]:
            typer.echo(finding_line(f))
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


def explain_cmd(
    source: Annotated[str | None, typer.Option("--source", "-s", help="source name (with --matter)")] = None,
    matter_id: Annotated[str | None, typer.Option("--matter", help="办件编号 (PROJID)")] = None,
    code: Annotated[str | None, typer.Option("--code", help="事项编码")] = None,
    matter_type: Annotated[str | None, typer.Option("--type", help="事项类型: code (01) or name (行政许可)")] = None,
    agency: Annotated[str | None, typer.Option("--agency", help="实施机构")] = None,
    group: Annotated[str | None, typer.Option("--group", help="材料类别: 申报, 过程, 结果 or 全部")] = None,
    on: DateOpt = None,
    table_file: TableOpt = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """The deciding rule, the rules that also matched and lost, and why: for one matter (--source
    --matter) or for a matter type (--code/--type/--agency/--group/--date). Exit 1 if no rule decides."""
    by_matter = source is not None or matter_id is not None
    by_type = any(v is not None for v in (code, matter_type, agency, group, on))
    if by_matter and by_type:
        raise fail("--source/--matter explain a matter; --code/--type/--agency/--group/--date a matter type: not both")
    if by_matter and (source is None or matter_id is None):
        raise fail("--source and --matter go together")
    if not by_matter and code is None and matter_type is None:
        raise fail("give --source and --matter, or --code (and/or --type)")
    on_date = parse_date(on, "--date")

    if by_matter:
        if source is None or matter_id is None:
            raise InvariantBroken("--source and --matter were checked to go together")
        _explain_matter_cmd(source, matter_id, table_file, config, as_json)
        return
    table = (
        table_from_file(table_file, as_json=as_json)
        if table_file
        else table_in_force(load_config(config), on_date or date.today())
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
        raise fail(str(exc)) from exc
    if as_json:
        echo_json(result)
    else:
        _print_explanation(result)
    if result["status"] != "decided":
        raise typer.Exit(1)


def _explain_matter_cmd(source: str, matter_id: str, table_file: Path | None, config: Path, as_json: bool) -> None:
    from night.lookup import MatterNotFound, matter_from_source_or_ledger

    settings = load_config(config)
    try:
        matter, origin, record = matter_from_source_or_ledger(settings, source_config(settings, source), matter_id)
    except MatterNotFound as exc:
        raise fail(str(exc), 1) from exc
    on = matter.completed_at.date()
    table = table_from_file(table_file, as_json=as_json) if table_file else table_in_force(settings, on)
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
        echo_json(result)
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


def due(
    before: Annotated[str, typer.Option("--before", help="list what falls due before this date (YYYY-MM-DD)")],
    out: Annotated[Path | None, typer.Option("--out", help="write the list (.xlsx or .csv)")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """到期鉴定清单: archived records whose disposition date is before DATE (永久 never falls due)."""
    limit = parse_date(before, "--before")
    if limit is None:
        raise InvariantBroken("--before is required, so it parses to a date")
    check_out(out)
    settings = load_config(config)
    from zoneinfo import ZoneInfo

    from ledger import queries
    from schemas.model import RetentionPeriod

    tz = ZoneInfo(settings.timezone)
    with open_ledger(settings) as ledger, ledger.read() as s:
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
            for r in queries.due_for_appraisal(s, limit)
        ]
    if out is not None:
        write_rows(out, DUE_HEADERS, rows)
    if as_json:
        echo_json({"before": limit.isoformat(), "count": len(rows), "records": rows,
                    **({"out": str(out)} if out else {})})
        return
    typer.echo(f"到期鉴定清单: {len(rows)} record(s) due before {limit.isoformat()}")
    echo_table(DUE_HEADERS, rows)
    if out is not None:
        typer.echo(f"written to {out}")
