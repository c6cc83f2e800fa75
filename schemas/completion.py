"""What a source says about its own completed matters (办结), as opposed to what it hands over.

应归尽归 (every matter that should be archived is archived) can only be answered against the
source's own word: how many matters it completed in a window, per 实施机构 and 事项类型, and,
where it can, which ones. These shapes are that word. They sit in `schemas` because the connectors
produce them and custody (`audit reconcile`) compares them with the ledger, and neither layer may
import the other. Counting happens at the source and includes records the pipeline would refuse
as invalid: those are quarantined, not missing, and the reconciliation must see them counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CompletedCount:
    """Matters completed (办结) at the source in a window, for one 实施机构 and one 事项类型."""

    agency: str  # 实施机构 name as the source writes it in its matters (Matter.agency)
    matter_type: str  # 事项类型 code, e.g. "01"
    count: int


@dataclass(frozen=True)
class CompletedItem:
    """One completed matter as the source lists it: enough to name the matters behind a difference."""

    project_id: str  # 办件编号
    agency: str
    matter_type: str
    service_code: str | None
    completed_at: datetime  # aware
    updated_at: datetime | None  # aware; None when the source does not say


def merge_counts(counts: Iterable[CompletedCount]) -> list[CompletedCount]:
    """Counts for one (agency, matter_type) added up, sorted by agency then type.

    A source's statistics may come in finer rows than guidang asks for (a count query grouped by
    agency code as well as name, a platform answering per region); the connectors merge them so
    that every source answers one row per pair, in one order.
    """
    total: Counter[tuple[str, str]] = Counter()
    for c in counts:
        total[(c.agency, c.matter_type)] += c.count
    return [CompletedCount(a, t, n) for (a, t), n in sorted(total.items())]


def count_items(items: Iterable[CompletedItem]) -> list[CompletedCount]:
    """The counts a listing amounts to, in `merge_counts` form (a source's list and its count must agree)."""
    return merge_counts(CompletedCount(i.agency, i.matter_type, 1) for i in items)


__all__ = ["CompletedCount", "CompletedItem", "count_items", "merge_counts"]
