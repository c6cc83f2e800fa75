"""`guidang audit log`: the ledger's events, filtered the way the archive bureau asks, one page at a time.

Dates are days in the configured timezone (`--from` inclusive, `--to` inclusive). Matter filters
(实施机构, 事项类型, 事项编码) select the events of matters whose ledger row has them. What is printed
is masked (ID numbers, credit codes, phones), in the table, the CSV and the JSON alike.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from flows.cli.common import ConfigOpt, _csv_cell, echo_json, echo_table, load_config, open_ledger, parse_date

# The payload keys too long for a table cell; `--format json` shows the whole payload.
_LONG_KEYS = ("row", "row_digest", "files", "members", "digests", "findings")


class LogFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


COLUMNS = ("seq", "at", "kind", "run", "source", "办件编号", "档号", "detail")


def _detail(payload: dict[str, Any]) -> str:
    short = {k: v for k, v in payload.items() if k not in _LONG_KEYS}
    text = json.dumps(short, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 160 else text[:157] + "…"


def log_command(
    config: ConfigOpt = Path("guidang.yaml"),
    agency: Annotated[str | None, typer.Option("--agency", help="实施机构, as the matter row names it")] = None,
    source: Annotated[str | None, typer.Option("--source", help="source name")] = None,
    date_from: Annotated[str | None, typer.Option("--from", metavar="YYYY-MM-DD", help="first day")] = None,
    date_to: Annotated[str | None, typer.Option("--to", metavar="YYYY-MM-DD", help="last day (inclusive)")] = None,
    matter_type: Annotated[str | None, typer.Option("--matter-type", help="事项类型 code (01, 02…)")] = None,
    service_code: Annotated[str | None, typer.Option("--service-code", help="事项编码")] = None,
    archival_code: Annotated[
        str | None, typer.Option("--archival-code", help="档号 (ASCII hyphens typed for its `·` are read as `·`)")
    ] = None,
    project_id: Annotated[str | None, typer.Option("--project-id", help="办件编号")] = None,
    run: Annotated[str | None, typer.Option("--run", help="run id")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="event kind; repeat for several")] = None,
    fmt: Annotated[LogFormat, typer.Option("--format", help="table, csv or json")] = LogFormat.TABLE,
    page: Annotated[int, typer.Option("--page", min=1, help="page number, from 1")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=10000, help="events per page")] = 50,
) -> None:
    """The ledger's events with filters (实施机构, source, dates, 事项类型, 事项编码, 档号, 办件编号, run,
    kind), oldest first, a page at a time. Exit 2 for a bad date or an unknown event kind."""
    from flows.cli.common import fail
    from ledger import audit_queries
    from ledger.audit_queries import LogFilter

    settings = load_config(config)
    zone = ZoneInfo(settings.timezone)
    first, last = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    if first and last and first > last:
        raise fail(f"--from {first} is after --to {last}")
    since = datetime.combine(first, time(), zone) if first else None
    until = datetime.combine(last + timedelta(days=1), time(), zone) if last else None
    with open_ledger(settings) as ledger, ledger.read() as s:
        kinds = tuple(kind or ())
        known = set(audit_queries.event_kinds(s))
        unknown = sorted(set(kinds) - known)
        if unknown:
            raise fail(f"--kind {', '.join(unknown)}: no such event kind in this ledger "
                       f"(known: {', '.join(sorted(known))})")
        code = archival_code
        if code is not None and not audit_queries.event_log(s, LogFilter(archival_code=code), limit=1)[0]:
            loose = audit_queries.archived_matter_loose(s, code)
            if len(loose) == 1:
                code = loose[0].archival_code
        f = LogFilter(agency=agency, source=source, since=since, until=until, matter_type=matter_type,
                      service_code=service_code, archival_code=code, project_id=project_id, run_id=run,
                      kinds=kinds)
        total, events = audit_queries.event_log(s, f, offset=(page - 1) * page_size, limit=page_size)
        rows = [
            {"seq": ev.seq, "at": ev.at.astimezone(zone).isoformat(timespec="seconds"), "kind": ev.kind,
             "run": ev.run_id, "source": ev.source, "办件编号": ev.project_id, "档号": ev.archival_code,
             "detail": _detail(ev.payload or {}), "payload": ev.payload, "hash": ev.hash}
            for ev in events
        ]
    pages = max(1, -(-total // page_size))
    if fmt is LogFormat.JSON:
        echo_json({"total": total, "page": page, "pages": pages, "page_size": page_size,
                   "events": [{k: v for k, v in r.items() if k != "detail"} for r in rows]})
        return
    if fmt is LogFormat.CSV:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([_csv_cell(r.get(c)) for c in COLUMNS])
        typer.echo(buf.getvalue(), nl=False)
        return
    echo_table(COLUMNS, rows)
    typer.echo(f"— page {page} of {pages}: events {min(total, (page - 1) * page_size + 1) if rows else 0}"
               f"–{(page - 1) * page_size + len(rows)} of {total}"
               + (f" (next: --page {page + 1})" if page < pages else ""))
