"""What every `guidang` command group shares: its options, how it fails, how it reads its inputs
(settings, dates, the ledger) and how it writes its outputs (JSON, tab-separated tables, CSV/XLSX).

Exit codes, the same for every command: 0 done, 1 a check or run failed (or, with --strict,
something was quarantined), 2 bad usage or configuration. Imports here are cheap (typer, the
standard library, the error types); the rest is imported inside the function that needs it, so
`guidang --help` loads no ledger, no openpyxl and no Prefect.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from schemas.findings import GuidangError

if TYPE_CHECKING:
    from ledger.store import Ledger
    from schemas.config import Settings, SqlSource, UnifiedSource

# ---------------------------------------------------------------- options

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="guidang.yaml", envvar="GUIDANG_CONFIG")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v")]
OUT_SUFFIXES = (".xlsx", ".csv")


# ---------------------------------------------------------------- errors and inputs


def fail(message: str, code: int = 2) -> typer.Exit:
    """The one way a command gives up: the reason on stderr, then `raise fail(...)` exits with `code`."""
    typer.echo(f"guidang: {message}", err=True)
    return typer.Exit(code)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def load_config(config: Path) -> Settings:
    """guidang.yaml, or exit 2 saying what is wrong with it."""
    from schemas.config import load_settings

    try:
        return load_settings(config)
    except GuidangError as exc:
        raise fail(str(exc)) from exc


def source_config(settings: Settings, name: str) -> UnifiedSource | SqlSource:
    """A configured source by name, or exit 2 naming the ones there are."""
    try:
        return settings.source(name)
    except (GuidangError, KeyError, ValueError) as exc:
        raise fail(str(exc)) from exc


@contextmanager
def open_ledger(settings: Settings) -> Iterator[Ledger]:
    from ledger.store import Ledger

    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        yield ledger


def parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc


def parse_datetime(value: str | None, name: str) -> datetime | None:
    """A date (midnight) or an ISO datetime; without a zone it is Beijing time, as the sources write it."""
    if value is None:
        return None
    try:
        dt = (
            datetime.fromisoformat(value)
            if "T" in value or " " in value
            else datetime.combine(date.fromisoformat(value), datetime.min.time())
        )
    except ValueError as exc:
        raise fail(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an ISO datetime") from exc
    if dt.tzinfo is None:
        from zoneinfo import ZoneInfo

        dt = dt.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return dt


def check_out(out: Path | None) -> None:
    """Refused before any work: an output whose format we would only discover at the end."""
    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        raise fail(f"--out {out}: write .xlsx or .csv")


# ---------------------------------------------------------------- outputs


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def echo_table(headers: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows for a terminal (or a paste into a spreadsheet): tab-separated, a header line first."""
    typer.echo("\t".join(headers))
    for row in rows:
        typer.echo("\t".join("" if row.get(h) is None else str(row.get(h)) for h in headers))


def write_rows(path: Path, headers: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
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


def report_run(summary: dict[str, Any], as_json: bool, strict: bool) -> None:
    """A night's (or a retry's) summary, then its exit code: 1 unless completed, and with `strict`
    1 when anything was quarantined."""
    from flows.report import summary_text

    if as_json:
        echo_json(summary)
    else:
        typer.echo(summary_text(summary))
    if summary.get("status") != "completed":
        raise typer.Exit(1)
    if strict and summary["totals"]["quarantined"]:
        raise typer.Exit(1)
