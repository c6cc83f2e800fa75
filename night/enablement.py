"""Enabling a unit archives what waited for it: the night collects the waiting window again.

A matter of a unit not yet enabled was recorded as waiting (ledger/waiting.py) and the watermark
went past it. On the first night whose date finds its unit and 事项类型 enabled, `waiting_window`
gives the (since, until] span of source update times that holds every such matter of the source;
the night collects it beside its own window, triage sends the matters on as new work, and
`close_reached` closes each waiting row once its matter has reached an end state. A matter the
source changed meanwhile is collected in its new form (its update time is then inside the night's
own window), so nothing is archived in a form the source no longer has.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ledger import waiting
from ledger.chain import append_event
from night.context import RunContext, SourceConfig

log = logging.getLogger("guidang")


def waiting_window(ctx: RunContext, source: SourceConfig) -> tuple[datetime, datetime] | None:
    """The window to collect again for the matters of `source` whose unit is now enabled; None when none."""
    day = ctx.now.astimezone(ctx.settings.zone).date()
    index = ctx.settings.unit_index
    with ctx.ledger.read() as s:
        rows = waiting.open_waiting(s, source.name)
    ready = [r for r in rows if index.waiting_reason(r.agency, r.agency_code, r.matter_type, day) is None]
    window = waiting.waiting_window(ready)
    if window is None:
        return None
    units = sorted({index.name_of(r.agency, r.agency_code) for r in ready})
    log.info("source %s: %d waiting matter(s) of %s now enabled: collecting (%s, %s] again",
             source.name, len(ready), "、".join(units), window[0].isoformat(), window[1].isoformat())
    if not ctx.dry_run:
        with ctx.ledger.transaction() as s:
            append_event(s, "enablement-backfill", run_id=ctx.run_id, source=source.name,
                         payload={"units": units, "matters": len(ready),
                                  "since": window[0].isoformat(), "until": window[1].isoformat()})
    return window


def windows_to_collect(
    start: datetime, end: datetime, extra: tuple[datetime, datetime] | None
) -> list[tuple[datetime, datetime]]:
    """The night's window and the waiting window, merged when they touch, so no record is read twice."""
    if extra is None:
        return [(start, end)]
    ws, we = extra
    if ws >= start and we <= end:
        return [(start, end)]
    if we >= start:  # overlapping or adjacent: one window from the earlier start
        return [(min(ws, start), max(we, end))]
    return [(ws, we), (start, end)]


def close_reached(ctx: RunContext, source: SourceConfig) -> int:
    """Close the waiting rows whose matters reached an end state this night."""
    if ctx.dry_run:
        return 0
    with ctx.ledger.transaction() as s:
        return waiting.resolve_reached(s, source.name, run_id=ctx.run_id)
