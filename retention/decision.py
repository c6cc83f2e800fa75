"""The one decision: which rule of the 归档范围和保管期限表 decides a key, and how the decisions for
a matter's document groups make the package's decision.

The rule order exists here once: 事项编码+材料类别 > 事项编码 > 事项类型+实施机构 > 事项类型 > 默认.
At the first level with rules in force on the date, the lowest row decides if they all say the
same, else the key is ambiguous: a table is never a coin toss, and a less specific level is not
consulted instead. Every look-up is a dict access on the table's `RuleIndex`, then a filter of the
handful of rules under that key by the date; there is no scan over the table.

`appraise` asks for the bare decision on the hot path (it stops at the deciding level);
`explain` and `explain_matter` ask for the trace too, which walks every level to say which rules
also matched and why they lost, and which were not in force on the date.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, NamedTuple, TypeVar

from retention.table import (
    LEVEL_CODE,
    LEVEL_CODE_GROUP,
    LEVEL_DEFAULT,
    LEVEL_NAMES,
    LEVEL_TYPE,
    LEVEL_TYPE_AGENCY,
    PERIOD_RANK,
    Rule,
    RuleIndex,
)
from schemas.errors import InvariantBroken
from schemas.model import DocumentGroup, RetentionPeriod

Status = Literal["decided", "no_rule", "ambiguous"]
_K = TypeVar("_K")


class RuleKey(NamedTuple):
    """What one decision is taken for, spelled as the index is keyed: the folded 事项编码, the
    事项类型 codes (a name such as 公共服务 stands for several), the folded 实施机构, the 材料类别 as
    the table writes it (申报/过程/结果; None = the matter level) and the date rules are judged on.
    An empty or None 事项编码 or 实施机构 skips the levels that need it."""

    service_code: str | None
    type_codes: tuple[str, ...]
    agency: str | None
    group: str | None
    on: date


class PassedOver(NamedTuple):
    """A rule under the key that did not decide, at the level it was found, and why not."""

    rule: Rule
    level: int
    why: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one key. `rule` decides at `level`; or `ambiguous` holds the disagreeing
    rules of `level` (row order); or neither, when no rule is in force. `lost` and `not_in_force`
    are filled only when the trace was asked for."""

    key: RuleKey
    level: int | None = None
    rule: Rule | None = None
    ambiguous: tuple[Rule, ...] = ()
    lost: tuple[PassedOver, ...] = ()
    not_in_force: tuple[PassedOver, ...] = ()

    @property
    def status(self) -> Status:
        if self.rule is not None:
            return "decided"
        return "ambiguous" if self.ambiguous else "no_rule"


def _by_row(rule: Rule) -> int:
    return rule.row


def _under(rules: Mapping[_K, tuple[Rule, ...]], keys: Sequence[_K]) -> Sequence[Rule]:
    """The rules under any of `keys`, once each, in row order (a 公共服务 rule is under 11 and 20)."""
    if len(keys) == 1:
        return rules.get(keys[0], ())
    seen: dict[int, Rule] = {}
    for k in keys:
        for r in rules.get(k, ()):
            seen[r.row] = r
    return sorted(seen.values(), key=_by_row)


def _levels(idx: RuleIndex, key: RuleKey) -> Iterator[tuple[int, Sequence[Rule]]]:
    """The rules under the key at each level, most specific first: the rule order, once."""
    code = key.service_code
    if code:
        if key.group:
            yield LEVEL_CODE_GROUP, idx.by_code_group.get((code, key.group), ())
        yield LEVEL_CODE, idx.by_code.get(code, ())
    if key.agency:
        yield LEVEL_TYPE_AGENCY, _under(idx.by_type_agency, [(c, key.agency) for c in key.type_codes])
    yield LEVEL_TYPE, _under(idx.by_type, key.type_codes)
    yield LEVEL_DEFAULT, idx.default


def _not_in_force_why(rule: Rule, on: date) -> str:
    if rule.effective_date and rule.effective_date > on:
        return f"not in force: 生效日期 {rule.effective_date} is after {on}"
    return f"not in force: 失效日期 {rule.expiry_date} is on or before {on}"


def decide(idx: RuleIndex, key: RuleKey, *, trace: bool = False) -> Decision:
    """Which rule decides `key`. Without `trace` the walk stops at the deciding level; with it,
    every level is walked so the decision names each rule that also matched, and why it lost."""
    on = key.on
    level: int | None = None
    winner: Rule | None = None
    ambiguous: tuple[Rule, ...] = ()
    lost: list[PassedOver] = []
    not_in_force: list[PassedOver] = []
    for at, rules in _levels(idx, key):
        if not rules:
            continue
        candidates = [r for r in rules if r.in_force(on)]
        if trace and len(candidates) < len(rules):
            not_in_force.extend(PassedOver(r, at, _not_in_force_why(r, on)) for r in rules if not r.in_force(on))
        if not candidates:
            continue
        if level is not None:  # decided (or disagreeing) at a more specific level already
            below = f"less specific: {LEVEL_NAMES[at]} is below {LEVEL_NAMES[level]}"
            lost.extend(PassedOver(r, at, below) for r in candidates)
            continue
        level = at
        first = min(candidates, key=_by_row) if len(candidates) > 1 else candidates[0]
        if len(candidates) > 1 and any(r.outcome != first.outcome for r in candidates):
            ambiguous = tuple(sorted(candidates, key=_by_row))
        else:
            winner = first
            if trace:
                same = f"same level, same outcome; row {first.row} comes first"
                lost.extend(PassedOver(r, at, same) for r in candidates if r is not first)
        if not trace:
            break
    return Decision(key, level, winner, ambiguous, tuple(lost), tuple(not_in_force))


GroupDecision = tuple[DocumentGroup | None, Decision]


@dataclass(frozen=True, slots=True)
class PackageDecision:
    """The package's decision from its groups' decisions (group None = the matter level, for a
    matter without documents). `failed` are the groups without a deciding rule, in group order;
    when there are none, `decision` (taken for `decided_by`) gives the package its rule."""

    groups: tuple[GroupDecision, ...]
    failed: tuple[GroupDecision, ...] = ()
    decided_by: DocumentGroup | None = None
    decision: Decision | None = None
    excluded_groups: tuple[DocumentGroup, ...] = ()

    @property
    def status(self) -> Status:
        if not self.failed:
            return "decided"
        return "ambiguous" if any(d.ambiguous for _, d in self.failed) else "no_rule"

    @property
    def rule(self) -> Rule | None:
        return self.decision.rule if self.decision else None

    @property
    def period(self) -> RetentionPeriod | None:
        """The period kept, None when nothing is archived (a 不归档 rule decides)."""
        rule = self.rule
        return rule.period if rule is not None and rule.archived else None


def _archived_rank(d: GroupDecision) -> tuple[int, int, int]:
    rule = d[1].rule
    if rule is None or rule.period is None or d[1].level is None:
        raise InvariantBroken("an archived group decision without its rule, period or level")
    return (PERIOD_RANK[rule.period], d[1].level, -rule.row)


def _specific_rank(d: GroupDecision) -> tuple[int, int]:
    rule = d[1].rule
    if rule is None or d[1].level is None:
        raise InvariantBroken("a group decision without its rule or level")
    return (d[1].level, -rule.row)


def combine(groups: Sequence[GroupDecision]) -> PackageDecision:
    """The package keeps the longest period among its archived groups, and records the rule that
    gave it (ties: the more specific level, then the lower row); with no archived group, the most
    specific 不归档 rule decides (then the lower row). Groups a 不归档 rule decides are excluded."""
    all_groups = tuple(groups)
    failed = tuple(d for d in all_groups if d[1].rule is None)
    if failed:
        return PackageDecision(all_groups, failed)
    archived = [d for d in all_groups if d[1].rule.archived]  # type: ignore[union-attr]
    group, decision = max(archived, key=_archived_rank) if archived else max(all_groups, key=_specific_rank)
    excluded = tuple(g for g, d in all_groups if g is not None and not d.rule.archived)  # type: ignore[union-attr]
    return PackageDecision(all_groups, (), group, decision, excluded)
