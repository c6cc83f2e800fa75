"""The unified system's own word on what it completed (办结): its statistics and its listing.

    GET /api/v1/statistics/completed?from=ISO&to=ISO     {"items": [{DEPTNAME, SERVICETYPE, COUNT}], "total"?}
    GET /api/v1/completed?from=ISO&to=ISO&page&size      {"total", "items": [{PROJID, DEPTNAME, SERVICETYPE,
                                                          SERVICECODE, FINISHTIME, UPDATETIME}]}

Both select FINISHTIME in [from, to). The field names are those of the platform's 办件 records
(DEPTNAME is Matter.agency, SERVICETYPE Matter.matter_type), so a count names an agency exactly as
the matters it counts do. An answer of the wrong shape is the source answering wrongly, hence
`SourceUnavailable` (retry later), naming the URL and, for a row, its PROJID or position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from schemas.completion import CompletedCount, CompletedItem, merge_counts
from schemas.errors import SourceUnavailable

log = logging.getLogger(__name__)

GetJson = Callable[[str, dict[str, Any]], Any]


def _text(value: Any) -> str | None:
    """A code or name as text: the platform sometimes sends SERVICETYPE as a number."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def aware_time(value: Any, tz: Any) -> datetime | None:
    """ISO text as an aware datetime (naive text is in `tz`); None for anything else."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def parse_counts(body: Any, what: str) -> list[CompletedCount]:
    """The statistics answer as counts; `what` ("source x: GET <url>") opens every message."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise SourceUnavailable(f"{what}: expected a JSON object with 'items'")
    out = []
    for n, row in enumerate(items, 1):
        count = row.get("COUNT") if isinstance(row, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise SourceUnavailable(f"{what}: item {n}: COUNT must be a whole number >= 0, got {count!r}")
        out.append(CompletedCount(_text(row.get("DEPTNAME")) or "", _text(row.get("SERVICETYPE")) or "", count))
    total = body.get("total")
    counted = sum(c.count for c in out)
    if isinstance(total, int) and total != counted:
        raise SourceUnavailable(f"{what}: the items add up to {counted}, but total says {total}")
    return merge_counts(out)


def parse_item(row: Any, what: str, tz: Any) -> CompletedItem:
    """One listed matter; a row without PROJID or a readable FINISHTIME is a wrong answer."""
    if not isinstance(row, dict):
        raise SourceUnavailable(f"{what}: every item must be a JSON object")
    projid = _text(row.get("PROJID"))
    if projid is None:
        raise SourceUnavailable(f"{what}: an item has no PROJID")
    finished = aware_time(row.get("FINISHTIME"), tz)
    if finished is None:
        raise SourceUnavailable(f"{what}: PROJID {projid}: FINISHTIME is not a date-time: {row.get('FINISHTIME')!r}")
    return CompletedItem(
        project_id=projid,
        agency=_text(row.get("DEPTNAME")) or "",
        matter_type=_text(row.get("SERVICETYPE")) or "",
        service_code=_text(row.get("SERVICECODE")),
        completed_at=finished,
        updated_at=aware_time(row.get("UPDATETIME"), tz),
    )


def iter_completed(
    get_json: GetJson, url: str, params: dict[str, Any], *, page_size: int, source: str, tz: Any, max_restarts: int
) -> Iterator[CompletedItem]:
    """The listing page by page, each PROJID once.

    A matter completed (or 补录) while the pages are read moves the later ones down a place, so a
    change in the reported total starts the paging again from page 1, skipping PROJIDs already
    given; after `max_restarts` such changes the source is too busy to be listed: SourceUnavailable.
    """
    what = f"source {source}: GET {url}"
    seen: set[str] = set()
    for _restart in range(max_restarts + 1):
        page, expected, changed = 1, None, False
        while True:
            body = get_json(url, {**params, "page": page, "size": page_size})
            items = body.get("items") if isinstance(body, dict) else None
            total = body.get("total") if isinstance(body, dict) else None
            if not isinstance(items, list) or not isinstance(total, int):
                raise SourceUnavailable(f"{what}: expected a JSON object with 'total' and 'items'")
            if expected is None:
                expected = total
            elif total != expected:
                log.info("source %s: completed matters changed while listing (%s -> %s); restarting",
                         source, expected, total)
                changed = True
                break
            for row in items:
                item = parse_item(row, what, tz)
                if item.project_id not in seen:
                    seen.add(item.project_id)
                    yield item
            if not items or page * page_size >= total:
                break
            page += 1
        if not changed:
            return
    raise SourceUnavailable(f"{what}: the listing of [{params.get('from')}, {params.get('to')}) kept changing "
                            f"while paging ({max_restarts} restarts); try again later")
