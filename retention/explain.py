"""Explaining a matter's retention decision to an archivist, group by group.

`guidang retention explain --source --matter` prints this; the package's 元数据.xml (保管信息:
保管期限表版本, 规则行号) must name the same version and row.
"""

from __future__ import annotations

from typing import Any

from retention.match import disposition_date, explain
from retention.table import PERIOD_RANK, RetentionTable
from schemas.model import DocumentGroup, Matter, RetentionPeriod


def explain_matter(table: RetentionTable, matter: Matter) -> dict[str, Any]:
    """Which rule of `table` decides `matter`, and why, as `appraise` decides it for the package.

    Each document group present is explained on its own (事项编码+材料类别 first, then the
    matter-level levels); the package keeps the longest period among the archived groups (ties:
    the more specific level, then the lower row); with no archived group, the most specific 不归档
    rule decides. Returns {"matter", "date", "table_version", "status" ("decided" | "no_rule" |
    "ambiguous"), "decision": {"row", "level_name", "scope", "period", "period_label",
    "disposition_date", "excluded_groups", "rule"} or None, "groups": {group or "全部": explain()},
    "message"}. The package's 保管信息 (保管期限表版本, 规则行号) must equal table_version and
    decision["row"]."""
    on = matter.completed_at.date()
    present = {d.group for d in matter.documents}
    groups: list[DocumentGroup | None] = [g for g in DocumentGroup if g in present] or [None]
    explained: dict[str, dict[str, Any]] = {}
    decided: list[tuple[DocumentGroup | None, dict[str, Any]]] = []
    status = "decided"
    for g in groups:
        e = explain(
            table,
            service_code=matter.service_code,
            matter_type=matter.matter_type,
            agency=matter.agency,
            group=g,
            on_date=on,
        )
        explained[g.value if g else "全部"] = e
        if e["status"] != "decided":
            status = "ambiguous" if "ambiguous" in (status, e["status"]) else e["status"]
            continue
        decided.append((g, e["decision"]))
    base = {"matter": matter.key, "date": on.isoformat(), "table_version": table.version, "groups": explained}
    if status != "decided":
        bad = [k for k, e in explained.items() if e["status"] != "decided"]
        return {
            **base,
            "status": status,
            "decision": None,
            "message": "; ".join(f"{k}: {explained[k]['message']}" for k in bad),
        }
    archived = [d for d in decided if d[1]["scope"] == "归档"]
    if archived:
        g, rule = max(
            archived, key=lambda d: (PERIOD_RANK[RetentionPeriod(d[1]["period"])], d[1]["level"], -d[1]["row"])
        )
    else:
        g, rule = max(decided, key=lambda d: (d[1]["level"], -d[1]["row"]))
    period = RetentionPeriod(rule["period"]) if archived else None
    excluded = [gg.value for gg, r in decided if gg is not None and r["scope"] != "归档"]
    outcome = f"归档 {period.label} ({period.value})" if period else "不归档"
    return {
        **base,
        "status": "decided",
        "decision": {
            "row": rule["row"],
            "level_name": rule["level_name"],
            "scope": "归档" if period else "不归档",
            "period": period.value if period else None,
            "period_label": period.label if period else None,
            "disposition_date": disposition_date(matter.completed_at.year, period) if period else None,
            "excluded_groups": excluded,
            "decided_by_group": g.value if g else "全部",
            "rule": rule,
        },
        "message": f"保管期限表 {table.version} 行 {rule['row']} decides ({rule['level_name']}): {outcome}",
    }
