"""The unified simulator's 办结 endpoints: the platform's own count and list of completed matters.

    GET /api/v1/statistics/completed?from=ISO&to=ISO     {"total": N, "items": [{DEPTNAME, SERVICETYPE, COUNT}]}
    GET /api/v1/completed?from=ISO&to=ISO&page=N&size=M  {"total", "page", "size", "items": [{PROJID, DEPTNAME,
                                                          SERVICETYPE, SERVICECODE, FINISHTIME, UPDATETIME}]}

Both select FINISHTIME in [from, to) (a bound without an offset is Asia/Shanghai) over every
completed record, including those the connector will refuse as invalid: the platform counts what
it completed, not what guidang can archive. A FINISHTIME that is no date-time cannot be placed in
a window and is left out of both. The field names are the ones the 办件 records use.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

from guidang_demo.serving import Handler, page_args, parse_time, send_json
from guidang_demo.unified_data import SHANGHAI

# What the 办结 listing tells of each matter: who, which type and service, when completed and updated.
_LISTED = ("PROJID", "DEPTNAME", "SERVICETYPE", "SERVICECODE", "FINISHTIME", "UPDATETIME")


class CompletedEndpoints:
    """Mixed into `UnifiedSimulator`; its `_handle` dispatches the routes `statistics` and `completed` here."""

    _lock: threading.Lock
    _matters: dict[str, dict[str, Any]]

    def _completed_rows(self, q: dict[str, list[str]]) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Completed records with FINISHTIME in [from, to), by FINISHTIME then PROJID; call under the lock.
        Raises ValueError for a bound that is no ISO date-time."""
        start = parse_time(q, "from", SHANGHAI)
        end = parse_time(q, "to", SHANGHAI)
        rows = []
        for r in self._matters.values():
            try:
                ft = datetime.fromisoformat(r["FINISHTIME"])
            except (KeyError, TypeError, ValueError):
                continue  # not completed, or a FINISHTIME no window can hold
            ft = ft if ft.tzinfo else ft.replace(tzinfo=SHANGHAI)
            if (start is None or ft >= start) and (end is None or ft < end):
                rows.append((ft, r["PROJID"], r))
        rows.sort(key=lambda t: (t[0], t[1]))
        return rows

    def _do_statistics(self, h: Handler, _a: str | None, q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        try:
            with self._lock:
                rows = self._completed_rows(q)
        except ValueError as exc:
            send_json(h, 400, {"error": str(exc)})
            return
        counts = Counter((r.get("DEPTNAME"), r.get("SERVICETYPE")) for _, _, r in rows)
        items = [{"DEPTNAME": a, "SERVICETYPE": t, "COUNT": n}
                 for (a, t), n in sorted(counts.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))]
        send_json(h, 200, {"total": len(rows), "items": items}, trunc)

    def _do_completed(self, h: Handler, _a: str | None, q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        try:
            page, size = page_args(q)
            with self._lock:
                rows = self._completed_rows(q)
        except ValueError as exc:
            send_json(h, 400, {"error": str(exc)})
            return
        items = [{k: r.get(k) for k in _LISTED} for _, _, r in rows[(page - 1) * size : page * size]]
        send_json(h, 200, {"total": len(rows), "page": page, "size": size, "items": items}, trunc)
