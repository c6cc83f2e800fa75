"""A self-built system's own count and list of its completed matters (办结), from the rows of its
`count_query` / `list_query`, by the `count_columns` / `list_columns` mapping alone.

A field the system does not hold (every sjjc record is 事项类型 06) comes from the source's
`constants`, as it does for the matters themselves, so a count names the same agency and type as
the matter it counts. Columns are matched case-insensitively (`resolve_columns`), since PostgreSQL
folds unquoted names. A row that cannot be read (a count that is no number, a 办结时间 that is no
date-time) is the query's mistake and raises `GuidangError` naming source, row and column: a
count guidang cannot read is no count at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.sources.sql_mapping import MatterMapping, resolve_columns
from connectors.sources.sql_values import BadValue
from schemas.completion import CompletedCount, CompletedItem, merge_counts
from schemas.config import SqlSource
from schemas.findings import Finding, GuidangError


def not_configured(config: SqlSource, key: str, what: str) -> GuidangError:
    """The error for a source asked to count (or list) without the query to do it with."""
    message = (f"source {config.name}: {key} is not configured, so the source cannot {what} its completed "
               f"matters; add {key} (with {key.removesuffix('_query')}_columns) to its entry in guidang.yaml")
    return GuidangError(message, [Finding("SQL-CONFIG-INVALID", f"source {config.name}: {key}", message)])


def _bad_row(config: SqlSource, key: str, n: int, field: str, column: str, problem: str) -> GuidangError:
    where = f"source {config.name}: {key} row {n}"
    message = f"{where}: field {field} (column {column}): {problem}"
    return GuidangError(message, [Finding("SQL-QUERY-RESULT", where, f"field {field} (column {column}): {problem}")])


def _field(config: SqlSource, mapping: MatterMapping, cols: dict[str, str], row: dict[str, Any],
           field: str) -> str | None:
    """A text field from its column (shown escaped when it cannot be decoded: a count or a listing
    still names it), else the source's constant for it, else None."""
    if field in cols:
        value = mapping.values.json(row[cols[field]])
        return None if value is None else str(value)
    return config.constants.get(field)


def _count(raw: object) -> int | None:
    """A whole, non-negative number as drivers hand back count(*) or a summed column (int, Decimal
    from MariaDB's SUM, text from SQLite); None for anything else."""
    if isinstance(raw, bool):
        return None
    try:
        if isinstance(raw, int | Decimal | float):
            value = int(raw)
            exact = value == raw
        elif isinstance(raw, str) and raw.strip().isdigit():
            value, exact = int(raw), True
        else:
            return None
    except (ValueError, OverflowError):  # NaN, infinity
        return None
    return value if exact and value >= 0 else None


def counts_from_rows(
    config: SqlSource, mapping: MatterMapping, keys: Sequence[str], rows: list[dict[str, Any]]
) -> list[CompletedCount]:
    """One CompletedCount per (agency, matter_type), rows for the same pair added up."""
    cols = resolve_columns(config.name, keys, config.count_columns, "count_query")
    column = config.count_columns["count"]
    out = []
    for n, row in enumerate(rows, 1):
        raw = mapping.values.json(row[cols["count"]])
        count = _count(raw)
        if count is None:
            raise _bad_row(config, "count_query", n, "count", column, f"not a count: {raw!r}")
        agency = _field(config, mapping, cols, row, "agency") or ""
        matter_type = _field(config, mapping, cols, row, "matter_type") or ""
        out.append(CompletedCount(agency, matter_type, count))
    return merge_counts(out)


def items_from_rows(
    config: SqlSource, mapping: MatterMapping, keys: Sequence[str], rows: list[dict[str, Any]]
) -> tuple[list[CompletedItem], list[str]]:
    """One CompletedItem per row, times made aware in the source's `timezone`, oldest 办结 first;
    and the rows that cannot be listed (no 办件编号, no readable 办结时间), each named by row and
    column, so that reconciliation reports them instead of the listing failing as a whole. An
    unreadable update time only leaves `updated_at` unknown: the item is still listed."""
    cols = resolve_columns(config.name, keys, config.list_columns, "list_query")
    out: list[CompletedItem] = []
    unlisted: list[str] = []

    def bad(n: int, field: str, problem: str) -> None:
        unlisted.append(f"source {config.name}: list_query row {n}: field {field} "
                        f"(column {config.list_columns[field]}): {problem}")

    for n, row in enumerate(rows, 1):
        raw_pid = row[cols["project_id"]]
        try:
            pid = mapping.text(raw_pid)
        except BadValue as exc:
            bad(n, "project_id", str(exc))
            continue
        if not pid:
            bad(n, "project_id", "missing")
            continue
        times: dict[str, datetime | None] = {"completed_at": None, "updated_at": None}
        unreadable = ""
        for field in times:
            if field in cols:
                try:
                    times[field] = mapping.to_datetime(row[cols[field]])
                except ValueError as exc:
                    unreadable = str(exc) if field == "completed_at" else unreadable
        completed = times["completed_at"]
        if completed is None:
            bad(n, "completed_at", f"{pid}: {unreadable or 'missing (the query should list completed matters only)'}")
            continue
        out.append(CompletedItem(
            project_id=pid,
            agency=_field(config, mapping, cols, row, "agency") or "",
            matter_type=_field(config, mapping, cols, row, "matter_type") or "",
            service_code=_field(config, mapping, cols, row, "service_code"),
            completed_at=completed,
            updated_at=times["updated_at"],
        ))
    out.sort(key=lambda i: (i.completed_at, i.project_id))
    return out, unlisted
