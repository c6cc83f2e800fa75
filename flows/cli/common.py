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
from schemas.masking import log_safe, shown_text
from schemas.model import MaskingFilter

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
    """The one way a command gives up: the reason (masked) on stderr, then `raise fail(...)` exits with `code`."""
    typer.echo(f"guidang: {log_safe(message)}", err=True)
    return typer.Exit(code)


class TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """guidang's own stderr handler: masked, WARNING unless --verbose, and always writing to the
    current sys.stderr (a test runner or a redirect may have replaced it since setup)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: bool = False) -> None:
    """The terminal shows guidang's warnings (INFO too with --verbose), masked, from any logger.

    The level sits on the handler, not only on the loggers: Prefect's per-task INFO lines
    ("Finished in state Completed()") propagate to the root logger from loggers whose own level lets
    them through, so only the handler can keep them off the terminal; Prefect's API handler, attached
    to its own loggers, still receives them. Called again (by `run -v`), it replaces its handler."""
    level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, TerminalHandler)]:
        root.removeHandler(old)
    handler = TerminalHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    mask_loggers("guidang")


def mask_loggers(*names: str) -> None:
    """Mask every record of these loggers before any handler sees it, and whatever their handlers
    receive from below (Prefect's API handler is attached to `prefect.flow_runs`, `prefect.task_runs`
    and the extra logger `guidang`)."""
    for name in names:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, MaskingFilter) for f in target.filters):
                target.addFilter(MaskingFilter())


def masked(data: Any) -> Any:
    """`data` with every string in it (keys and values, however nested) masked and its control
    characters escaped (`shown_text`): a source's value cannot break a line or drive the terminal."""
    if isinstance(data, str):
        return shown_text(data)
    if isinstance(data, Mapping):
        return {masked(k): masked(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [masked(v) for v in data]
    return data


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


def echo_json(data: Any, *, mask: bool = True) -> None:
    """JSON on stdout, masked unless the caller has masked all but what the operator asked for."""
    typer.echo(json.dumps(masked(data) if mask else data, ensure_ascii=False, indent=2, default=str))


def echo_table(headers: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows for a terminal (or a paste into a spreadsheet): tab-separated, a header line first, masked."""
    typer.echo("\t".join(headers))
    for row in rows:
        typer.echo("\t".join("" if row.get(h) is None else shown_text(str(row.get(h))) for h in headers))


# A spreadsheet evaluates a cell that starts with one of these (OWASP "CSV injection"); tab and CR too.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell_text(value: Any) -> str:
    """A value as the text a person reads: masked, control characters escaped, blank for None."""
    return "" if value is None else shown_text(str(value))


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would take for a formula gets a leading `'`, so it is shown, not run;
    numbers stay numbers (-5 is a number, not a formula)."""
    if value is None:
        return ""
    text = _cell_text(value)
    if isinstance(value, bool | int | float):
        return value if text == str(value) else text
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_rows(path: Path, headers: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """A list for people: CSV (UTF-8 with BOM, so Excel shows the Chinese) or XLSX, one header row.

    Nothing from the data can become a live formula: in CSV a text cell starting with = + - @ (or tab,
    CR) is prefixed with `'`; in XLSX every cell is written as a string cell (data type "s"), which
    Excel shows as text whatever it starts with."""
    n = 0
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([_csv_cell(h) for h in headers])
            for row in rows:
                w.writerow([_csv_cell(row.get(h)) for h in headers])
                n += 1
        return n
    return write_sheets(path, [(path.stem, headers, rows)])[0]


def write_sheets(path: Path, sheets: Sequence[tuple[str, Sequence[str], Iterable[Mapping[str, Any]]]]) -> list[int]:
    """An XLSX workbook of several sheets (title, headers, rows), every cell a string cell as in
    `write_rows`; returns the rows written per sheet."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    written: list[int] = []
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title[:31] or "sheet")

        def text_cells(values: Iterable[Any], ws: Any = ws) -> list[Any]:
            cells = []
            for value in values:
                if value is None:
                    cells.append(None)
                    continue
                cell = WriteOnlyCell(ws, value=_cell_text(value))
                cell.data_type = "s"  # openpyxl would otherwise mark "=…" as a formula ("f")
                cells.append(cell)
            return cells

        ws.append(text_cells(headers))
        n = 0
        for row in rows:
            ws.append(text_cells(row.get(h) for h in headers))
            n += 1
        written.append(n)
    wb.save(path)
    return written


def report_run(summary: dict[str, Any], as_json: bool, strict: bool) -> None:
    """A night's (or a retry's) summary, then its exit code: 1 unless completed, and with `strict`
    1 when anything was quarantined."""
    from night.report import summary_text

    if as_json:
        echo_json(summary)
    else:
        typer.echo(summary_text(summary))
    if summary.get("status") != "completed":
        raise typer.Exit(1)
    if strict and summary["totals"]["quarantined"]:
        raise typer.Exit(1)
