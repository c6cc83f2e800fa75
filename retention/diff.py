"""Two table versions compared in the archivists' terms: which rules were added, removed or changed.

A rule is identified by what it applies to and from when (事项编码, 事项类型, 实施机构, 材料类别,
生效日期); everything else it says (归档范围, 保管期限, codes, 失效日期, 依据, 事项名称) is what can
change. Moving a rule to another row is not a change of substance, but the new row is shown.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from retention.table import RetentionTable, Rule

KEY_COLUMNS = ("事项编码", "事项类型", "实施机构", "材料类别", "生效日期")
VALUE_COLUMNS = ("事项名称", "归档范围", "保管期限", "门类代码", "机构问题代码", "失效日期", "依据")


def _key(rule: Rule) -> tuple[Any, ...]:
    shown = rule.display()
    return tuple(shown[c] for c in KEY_COLUMNS)


def diff_tables(old: RetentionTable, new: RetentionTable) -> dict[str, Any]:
    """{"old_version", "new_version", "old_hash", "new_hash", "added": [rule…], "removed": [rule…],
    "changed": [{"key": {...}, "old_row", "new_row", "changes": {column: {"from", "to"}}}],
    "unchanged": n, "summary": {"added", "removed", "changed", "unchanged"}}; rules are shown with
    Chinese headers and 永久/30年/10年. Rules sharing a key pair up in row order."""
    olds: dict[tuple[Any, ...], list[Rule]] = defaultdict(list)
    news: dict[tuple[Any, ...], list[Rule]] = defaultdict(list)
    for r in old.rules:
        olds[_key(r)].append(r)
    for r in new.rules:
        news[_key(r)].append(r)
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    unchanged = 0
    for key in list(olds) + [k for k in news if k not in olds]:
        before, after = olds.get(key, []), news.get(key, [])
        for a, b in zip(before, after, strict=False):
            da, db = a.display(), b.display()
            changes = {c: {"from": da[c], "to": db[c]} for c in VALUE_COLUMNS if da[c] != db[c]}
            if changes:
                changed.append(
                    {
                        "key": dict(zip(KEY_COLUMNS, key, strict=True)),
                        "old_row": a.row,
                        "new_row": b.row,
                        "changes": changes,
                    }
                )
            else:
                unchanged += 1
        removed.extend(r.display() for r in before[len(after) :])
        added.extend(r.display() for r in after[len(before) :])
    added.sort(key=lambda d: d["行"])
    removed.sort(key=lambda d: d["行"])
    changed.sort(key=lambda d: d["new_row"])
    return {
        "old_version": old.version,
        "new_version": new.version,
        "old_hash": old.content_hash,
        "new_hash": new.content_hash,
        "added": added,
        "removed": removed,
        "changed": changed,
        "unchanged": unchanged,
        "summary": {"added": len(added), "removed": len(removed), "changed": len(changed), "unchanged": unchanged},
    }
