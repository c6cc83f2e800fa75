"""`guidang audit rollout|reconcile`: the bureau's questions: where does each unit stand in the
rollout (推进情况), and is everything that should be archived archived (应归尽归, 对账)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import ConfigOpt, JsonOpt, echo_json, fail, load_config, open_ledger, parse_date
from schemas.errors import InvariantBroken


def rollout_command(
    config: ConfigOpt = Path("guidang.yaml"),
    as_of: Annotated[str | None, typer.Option("--as-of", help="judge the targets as of this date (YYYY-MM-DD); "
                                              "default today in the configured zone")] = None,
    catalogue: Annotated[Path | None, typer.Option("--catalogue", exists=True, dir_okay=False,
                                                   help="事项目录 (XLSX/CSV/YAML): counts the units' 事项 the "
                                                   "ledger has not seen yet in the share with a rule")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per unit (实施机构): enabled or not and since when, the share of its 事项 with a retention rule,
    matters archived to date, last night's result, the target date and whether it is met, on track or
    at risk. Exit 1 when a unit's target is missed or at risk."""
    from custody.rollout import STATUS_TEXT, rollout_report, table_in_force

    settings = load_config(config)
    today = parse_date(as_of, "--as-of") or datetime.now(settings.zone).date()
    entries: list[tuple[str, str, str]] = []
    if catalogue is not None:
        from retention import load_catalogue
        from schemas.findings import errors

        items, findings = load_catalogue(catalogue)
        if errors(findings):
            raise fail(f"{catalogue}: " + "; ".join(str(f) for f in errors(findings)))
        entries = [(i.agency, i.service_code, i.matter_type) for i in items if i.agency and i.matter_type]
    with open_ledger(settings) as ledger:
        report = rollout_report(settings, ledger, table_in_force(settings, ledger, today), today=today,
                                catalogue=entries)
    data = report.to_dict()
    if as_json:
        echo_json(data)
    else:
        night = data["last_night"]
        typer.echo(f"推进情况 rollout as of {data['as_of']}; last night: "
                   + (f"{night['run_id']} {night['status']} ({night['started_at'][:16]})" if night else "none"))
        for u in report.units:
            enabled = (f"enabled from {u.enabled_from or 'the start'}" if u.enabled else "disabled") \
                + (f" for 事项类型 {','.join(u.matter_types)}" if u.matter_types else "")
            if not u.registered:
                enabled = "not registered"
            share = f"{u.with_rule}/{u.service_codes} 事项 with a rule" if u.rule_share is not None else "rules: -"
            last = ", ".join(f"{k} {v}" for k, v in sorted(u.last_night.items())) or "-"
            typer.echo(f"  {u.unit}: {enabled}; {share}; archived {u.archived}, waiting {u.waiting}, "
                       f"quarantined {u.quarantined}; last night: {last}")
            if u.target_date:
                typer.echo(f"      target {u.target_date}: {u.status} {STATUS_TEXT[u.status]} — {u.reason}")
            elif not u.registered:
                typer.echo(f"      {u.status} {STATUS_TEXT[u.status]} — {u.reason}")
    if any(u.status in ("missed", "at_risk") for u in report.units):
        raise typer.Exit(1)




ROW_HEADERS = {"unit": "实施机构", "matter_type": "事项类型", "completed": "源系统办结", "archived": "已归档",
               "not_in_scope": "不归档", "quarantined": "隔离", "waiting": "待启用", "pending": "待续",
               "unaccounted": "无下落", "not_at_source": "源系统无", "difference": "差额"}
FINDING_HEADERS = {"code": "代码", "text": "说明", "source": "来源", "unit": "实施机构", "matter_type": "事项类型",
                   "project_ids": "办件编号", "message": "详情"}


def reconcile_command(
    date_from: Annotated[str, typer.Option("--from", help="first completion day (YYYY-MM-DD), configured zone")],
    date_to: Annotated[str, typer.Option("--to", help="last completion day (YYYY-MM-DD), inclusive")],
    unit: Annotated[str | None, typer.Option("--unit", help="one 实施机构 (its name or an alias)")] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="also write the table and findings to F.xlsx")] = None,
    config: ConfigOpt = Path("guidang.yaml"),
    as_json: JsonOpt = False,
) -> None:
    """应归尽归: per unit and 事项类型, matters completed at the source against archived + not in scope
    + quarantined + waiting + pending in the ledger; each difference a finding naming its matters
    (where the source can list them). Exit 1 when anything is unaccounted for."""
    from custody.reconcile import reconcile
    from flows.cli.progress_bars import progress_bar, show_progress

    settings = load_config(config)
    first, last = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    if first is None or last is None:
        raise InvariantBroken("--from and --to are required, so they parse to dates")
    if last < first:
        raise fail(f"--to {last} is before --from {first}")
    if xlsx is not None and xlsx.suffix.lower() != ".xlsx":
        raise fail(f"--xlsx {xlsx}: the file name must end in .xlsx")
    if unit is not None and settings.units and settings.unit_index.find(unit) is None:
        raise fail(f"--unit {unit}: no such unit (configured: {', '.join(u.name for u in settings.units)})")
    with open_ledger(settings) as ledger, \
            progress_bar("对账 reconcile", total=len(settings.sources), enabled=show_progress(as_json)) as advance:
        report = reconcile(settings, ledger, first, last, unit=unit,
                           progress=lambda done, total: advance(1))
    data = report.to_dict()
    if xlsx is not None:
        from flows.cli.common import write_sheets

        findings = [{**f, "project_ids": " ".join(f["project_ids"])} for f in data["findings"]]
        write_sheets(xlsx, [
            ("对账", list(ROW_HEADERS.values()),
             [{ROW_HEADERS[k]: v for k, v in r.items()} for r in [*data["rows"], data["totals"]]]),
            ("差异", list(FINDING_HEADERS.values()), [{FINDING_HEADERS[k]: f[k] for k in FINDING_HEADERS}
                                                    for f in findings]),
        ])
    if as_json:
        echo_json(data)
    else:
        _print_reconcile(data)
    if not report.ok:
        raise typer.Exit(1)


def _print_reconcile(data: dict[str, object]) -> None:
    from flows.cli.common import echo_table

    typer.echo(f"对账 reconciliation, completed {data['from']} to {data['to']}"
               + (f", unit {data['unit']}" if data["unit"] else ""))
    for name, state in data["sources"].items():  # type: ignore[attr-defined]
        typer.echo(f"  source {name}: {state}")
    rows = [*data["rows"], data["totals"]]  # type: ignore[misc]
    echo_table(list(ROW_HEADERS.values()), [{ROW_HEADERS[k]: v for k, v in r.items()} for r in rows])
    findings = data["findings"]
    for f in findings:  # type: ignore[attr-defined]
        where = " ".join(x for x in (f["source"], f["unit"], f["matter_type"]) if x)
        typer.echo(f"  {f['code']} {where}: {f['message']}")
        ids = f["project_ids"]
        if ids:
            shown = ", ".join(ids[:20]) + (f" … and {len(ids) - 20} more" if len(ids) > 20 else "")
            typer.echo(f"      办件编号 {shown}")
    typer.echo("OK: every matter completed at the source is accounted for" if not findings
               else f"FAILED: {len(findings)} difference(s)")
