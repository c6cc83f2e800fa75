"""Reconciliation (对账): completed at the source against accounted for in the ledger (应归尽归).

For a window of completion dates, each source counts its completed matters per 实施机构 and 事项类型
(`count_completed`), and, where it can, lists them (`list_completed`). Every listed matter is then
looked up in the ledger by 办件编号 and given an outcome: archived, not in scope (不归档),
quarantined, waiting for its unit (待启用), or pending (in progress, or updated after the source's
watermark, so the next night takes it). A matter with none of these is unaccounted for; a matter the
ledger holds as completed in the window that the source does not list is a difference too. Each
difference is a finding naming the matters that make it. A source that can only count is compared
by totals, and its findings say that the matters cannot be named.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from ledger import queries, reconcile_queries
from ledger.store import Ledger
from schemas.completion import CompletedItem
from schemas.config import Settings, SqlSource, UnifiedSource
from schemas.errors import InvariantBroken, SourceUnavailable
from schemas.findings import GuidangError
from schemas.model import mask_text

log = logging.getLogger("guidang")

COUNTED = ("archived", "not_in_scope", "quarantined", "waiting", "pending")
FINDING_TEXT = {
    "R-UNACCOUNTED": "源系统已办结，台账中没有下落 / completed at the source, nowhere in the ledger",
    "R-NOT-AT-SOURCE": "台账中有，源系统未列为该期间办结 / in the ledger, not completed at the source in the window",
    "R-COUNT-DIFFERS": "源系统统计数与台账不符 / the source's count differs from the ledger's",
    "R-LIST-DIFFERS": "源系统统计数与其清单不符 / the source's count differs from its own list",
    "R-SOURCE-UNAVAILABLE": "源系统无法统计 / the source could not be counted",
    "R-LIST-UNREADABLE": "源系统清单中有无法读取的行 / rows of the source's list cannot be read",
}


@dataclass
class Row:
    """One unit and 事项类型: completed at the source, and where those matters are."""

    unit: str
    matter_type: str
    completed: int = 0
    archived: int = 0
    not_in_scope: int = 0
    quarantined: int = 0
    waiting: int = 0
    pending: int = 0
    unaccounted: int = 0
    not_at_source: int = 0

    @property
    def difference(self) -> int:
        return self.completed - sum(getattr(self, k) for k in COUNTED)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in ("unit", "matter_type", "completed", *COUNTED, "unaccounted",
                                                 "not_at_source")}, "difference": self.difference}


@dataclass
class ReconcileFinding:
    code: str
    source: str
    unit: str | None = None
    matter_type: str | None = None
    project_ids: list[str] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": FINDING_TEXT[self.code], "source": self.source, "unit": self.unit,
                "matter_type": self.matter_type, "project_ids": self.project_ids, "message": mask_text(self.message)}


@dataclass
class ReconcileReport:
    date_from: str
    date_to: str
    unit: str | None
    rows: list[Row]
    findings: list[ReconcileFinding]
    sources: dict[str, str]  # source -> "listed" / "counted" / the error

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        totals = Row("TOTAL", "")
        for r in self.rows:
            _add(totals, r)
        return {"from": self.date_from, "to": self.date_to, "unit": self.unit, "ok": self.ok,
                "sources": self.sources, "rows": [r.to_dict() for r in self.rows], "totals": totals.to_dict(),
                "findings": [f.to_dict() for f in self.findings]}


def window(settings: Settings, first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in the configured zone: the days are the bureau's."""
    zone = settings.zone
    return datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone)


Opener = Callable[[UnifiedSource | SqlSource], Any]


def reconcile(
    settings: Settings, ledger: Ledger, first: date, last: date, *, unit: str | None = None,
    open_source: Opener | None = None, progress: Callable[[int, int], None] | None = None,
    sources: Sequence[str] | None = None,
) -> ReconcileReport:
    """Reconcile every configured source (or `sources`) over the completion days first..last."""
    if open_source is None:
        from connectors.sources import open_source as _open

        def open_source(src: UnifiedSource | SqlSource) -> Any:
            return _open(src, base_dir=settings.base_dir)

    start, end = window(settings, first, last)
    wanted = settings.unit_index.find(unit) if unit else None
    unit_name = wanted.name if wanted else unit
    rows: dict[tuple[str, str], Row] = {}
    findings: list[ReconcileFinding] = []
    states: dict[str, str] = {}
    selected = [settings.source(n) for n in sources] if sources else list(settings.sources)
    for n, src in enumerate(selected):
        try:
            connector = open_source(src)
        except GuidangError as exc:
            states[src.name] = f"error: {exc}"
            findings.append(ReconcileFinding("R-SOURCE-UNAVAILABLE", src.name, message=str(exc)))
            continue
        try:
            local: dict[tuple[str, str], Row] = {}
            states[src.name] = _one_source(settings, ledger, src.name, connector, start, end, unit_name,
                                           local, findings)
            for key, r in local.items():
                _add(rows.setdefault(key, Row(*key)), r)
        except (SourceUnavailable, GuidangError) as exc:
            states[src.name] = f"error: {exc}"
            findings.append(ReconcileFinding("R-SOURCE-UNAVAILABLE", src.name, message=str(exc)))
        finally:
            connector.close()
        if progress is not None:
            progress(n + 1, len(selected))
    ordered = [rows[k] for k in sorted(rows)]
    return ReconcileReport(first.isoformat(), last.isoformat(), unit_name, ordered, findings, states)


def _add(into: Row, r: Row) -> None:
    for k in ("completed", *COUNTED, "unaccounted", "not_at_source"):
        setattr(into, k, getattr(into, k) + getattr(r, k))


def _one_source(
    settings: Settings, ledger: Ledger, source: str, connector: Any, start: datetime, end: datetime,
    unit: str | None, rows: dict[tuple[str, str], Row], findings: list[ReconcileFinding],
) -> str:
    index = settings.unit_index

    def row(agency: str, mtype: str) -> Row | None:
        name = index.name_of(agency)
        if unit is not None and name != unit:
            return None
        return rows.setdefault((name, mtype), Row(name, mtype))

    counts = connector.count_completed(start, end)
    counted: dict[tuple[str, str], int] = defaultdict(int)
    for c in counts:
        counted[(index.name_of(c.agency), c.matter_type)] += c.count
        r = row(c.agency, c.matter_type)
        if r is not None:
            r.completed += c.count
    listing = connector.list_completed(start, end)
    with ledger.read() as s:
        in_ledger = reconcile_queries.completed_in_window(s, source, start, end)
        watermark = queries.get_watermark(s, source)
    if listing is None:
        _by_totals(source, in_ledger, row, counted, findings)
        return "counted"
    items: list[CompletedItem] = list(listing)
    for problem in getattr(connector, "unlisted", []):  # a row without 办件编号 or 办结时间, named
        findings.append(ReconcileFinding("R-LIST-UNREADABLE", source, message=problem))
    with ledger.read() as s:
        outcome = reconcile_queries.outcomes(s, source, [i.project_id for i in items])
    listed: dict[tuple[str, str], int] = defaultdict(int)
    missing: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        key = (index.name_of(item.agency), item.matter_type)
        listed[key] += 1
        r = row(item.agency, item.matter_type)
        if r is None:
            continue
        found = outcome.get(item.project_id)
        if found is None and _after(item, watermark):
            found = "pending"  # the next night collects it
        if found is None:
            r.unaccounted += 1
            missing[key].append(item.project_id)
        else:
            setattr(r, found, getattr(r, found) + 1)
    for (name, mtype), ids in sorted(missing.items()):
        findings.append(ReconcileFinding("R-UNACCOUNTED", source, name, mtype, sorted(ids),
                                         f"{len(ids)} matter(s) completed at {source} are nowhere in the ledger"))
    for key in sorted(set(counted) | set(listed)):
        if counted.get(key, 0) != listed.get(key, 0) and (unit is None or key[0] == unit):
            findings.append(ReconcileFinding(
                "R-LIST-DIFFERS", source, key[0], key[1],
                message=f"counted {counted.get(key, 0)}, listed {listed.get(key, 0)}"))
    at_source = {i.project_id for i in items}
    extra: dict[tuple[str, str], list[str]] = defaultdict(list)
    for m in in_ledger:
        if m["project_id"] not in at_source:
            r = row(m["agency"], m["matter_type"])
            if r is not None:
                r.not_at_source += 1
                extra[(r.unit, r.matter_type)].append(m["project_id"])
    for (name, mtype), ids in sorted(extra.items()):
        findings.append(ReconcileFinding("R-NOT-AT-SOURCE", source, name, mtype, sorted(ids),
                                         f"{len(ids)} matter(s) in the ledger as completed in the window; "
                                         f"{source} does not list them"))
    return "listed"


def _after(item: CompletedItem, watermark: datetime | None) -> bool:
    return watermark is None or (item.updated_at is not None and item.updated_at > watermark)


def _by_totals(
    source: str, in_ledger: list[dict[str, Any]], row: Callable[[str, str], Row | None],
    counted: dict[tuple[str, str], int], findings: list[ReconcileFinding],
) -> None:
    """A source that can only count: the ledger's matters of the window against its totals."""
    touched: set[tuple[str, str]] = set()
    for m in in_ledger:
        r = row(m["agency"], m["matter_type"])
        if r is not None:
            setattr(r, m["outcome"], getattr(r, m["outcome"]) + 1)
            touched.add((r.unit, r.matter_type))
    for key in sorted(touched | {k for k in counted if row(*k) is not None}):
        r = row(*key)
        if r is None:
            raise InvariantBroken(f"reconcile row {key} vanished")
        if r.difference:
            if r.difference > 0:
                r.unaccounted += r.difference
            findings.append(ReconcileFinding(
                "R-COUNT-DIFFERS", source, key[0], key[1],
                message=f"{source} counts {counted.get(key, 0)} completed, the ledger accounts for "
                        f"{counted.get(key, 0) - r.difference}; {source} cannot list its matters to name them"))
