"""The retention table as data: one `Rule` per row, a `RetentionTable` that hashes and indexes them.

A table is stored by the ledger as a version and rebuilt from its records later, so everything a
package records about its appraisal (version, row) must survive `to_records()` / `from_records()`
unchanged. The content hash is computed over canonical values (codes, ISO dates), never over the
spelling the archivist used, so the same table typed as XLSX, CSV or YAML hashes alike.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any

from schemas.findings import GuidangError
from schemas.model import MATTER_TYPES, RetentionPeriod


class RetentionTableError(GuidangError):
    """A retention table (or a stored version of one) cannot be read or rebuilt."""


# field name -> the standard Chinese header; the order is the column order of a written table.
COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "service_code": "事项编码",
        "service_name": "事项名称",
        "matter_type": "事项类型",
        "agency": "实施机构",
        "group": "材料类别",
        "scope": "归档范围",
        "period": "保管期限",
        "category_code": "门类代码",
        "org_code": "机构问题代码",
        "effective_date": "生效日期",
        "expiry_date": "失效日期",
        "basis": "依据",
    }
)

# Specificity levels, least specific first: the index of a level is its rank.
LEVEL_DEFAULT, LEVEL_TYPE, LEVEL_TYPE_AGENCY, LEVEL_CODE, LEVEL_CODE_GROUP = range(5)
LEVEL_NAMES: tuple[str, ...] = ("默认", "事项类型", "事项类型+实施机构", "事项编码", "事项编码+材料类别")
LEVEL_NAMES_EN: tuple[str, ...] = (
    "default",
    "matter type",
    "matter type + agency",
    "service code",
    "service code + document group",
)

GROUPS: tuple[str, ...] = ("申报", "过程", "结果")  # 材料类别 as the table writes them; None = 全部
ALL_GROUPS = "全部"
EXAMPLE_MARK = "【示例】"  # starts 事项名称 in the template's example row, so a forgotten one is named
SCOPE_ARCHIVED, SCOPE_NOT_ARCHIVED = "归档", "不归档"
DEFAULT_CATEGORY = "WS"

# Y > D30 > D10: how "the longest period" is decided.
PERIOD_RANK: Mapping[RetentionPeriod, int] = MappingProxyType(
    {RetentionPeriod.D10: 10, RetentionPeriod.D30: 30, RetentionPeriod.PERMANENT: 10_000}
)

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, mapped to their ASCII forms.
_FULLWIDTH = MappingProxyType({**{cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}, 0x3000: 0x20})


_NEEDS_FOLD = re.compile("[\uff01-\uff5e\u3000]")


def fold_width(text: str) -> str:
    """Full-width letters/digits/space to ASCII, then strip: the spelling rules and matters compare in.
    (The search first: most text has nothing to fold, and appraisal calls this per matter.)"""
    if _NEEDS_FOLD.search(text):
        text = text.translate(_FULLWIDTH)
    return text.strip()


def as_date(value: date | datetime | str) -> date:
    """A date, a datetime (its own calendar date) or ISO text, as the date rules are judged on."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def type_codes(matter_type: str | None) -> tuple[str, ...]:
    """The 事项类型 codes a rule's type stands for: a code stands for itself, a name for every code
    carrying it (公共服务 is both 11 and 20 in the exchange tables)."""
    if matter_type is None:
        return ()
    if matter_type in MATTER_TYPES:
        return (matter_type,)
    return tuple(sorted(c for c, n in MATTER_TYPES.items() if n == matter_type))


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table in canonical form.

    `matter_type` is a code ("01") or, only for a name that several codes share (公共服务), that
    name. On a rule with a 事项编码, 事项名称/事项类型/实施机构 describe the matter type and do not
    narrow the match: the code alone identifies it.
    """

    row: int
    archived: bool
    period: RetentionPeriod | None = None
    service_code: str | None = None
    service_name: str | None = None
    matter_type: str | None = None
    agency: str | None = None
    group: str | None = None  # 申报 / 过程 / 结果; None = 全部
    category_code: str = DEFAULT_CATEGORY
    org_code: str = ""
    effective_date: date | None = None
    expiry_date: date | None = None
    basis: str | None = None
    sheet: str | None = None

    @property
    def level(self) -> int:
        if self.service_code:
            return LEVEL_CODE_GROUP if self.group else LEVEL_CODE
        if self.matter_type:
            return LEVEL_TYPE_AGENCY if self.agency else LEVEL_TYPE
        return LEVEL_DEFAULT

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]

    @property
    def type_codes(self) -> tuple[str, ...]:
        return type_codes(self.matter_type)

    def index_keys(self) -> list[tuple[int, tuple[str, ...]]]:
        """(level, key) pairs under which this rule is found; a 公共服务 rule has one per code."""
        level = self.level
        if level == LEVEL_CODE_GROUP:
            return [(level, (self.service_code or "", self.group or ""))]
        if level == LEVEL_CODE:
            return [(level, (self.service_code or "",))]
        if level == LEVEL_TYPE_AGENCY:
            return [(level, (c, self.agency or "")) for c in self.type_codes]
        if level == LEVEL_TYPE:
            return [(level, (c,)) for c in self.type_codes]
        return [(level, ())]

    def in_force(self, on: date) -> bool:
        """生效日期 <= on < 失效日期; an open end is open."""
        return (self.effective_date is None or self.effective_date <= on) and (
            self.expiry_date is None or on < self.expiry_date
        )

    def overlaps(self, other: Rule) -> bool:
        """Whether some day exists on which both rules are in force."""
        a_start, a_end = self.effective_date or date.min, self.expiry_date or date.max
        b_start, b_end = other.effective_date or date.min, other.expiry_date or date.max
        return a_start < b_end and b_start < a_end

    @property
    def outcome(self) -> tuple[bool, RetentionPeriod | None, str, str]:
        """What a matter gets from the rule; two rules with equal outcomes never conflict."""
        return (self.archived, self.period, self.category_code, self.org_code)

    @property
    def scope(self) -> str:
        return SCOPE_ARCHIVED if self.archived else SCOPE_NOT_ARCHIVED

    def to_record(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "sheet": self.sheet,
            "service_code": self.service_code,
            "service_name": self.service_name,
            "matter_type": self.matter_type,
            "agency": self.agency,
            "group": self.group,
            "scope": self.scope,
            "period": self.period.value if self.period else None,
            "category_code": self.category_code,
            "org_code": self.org_code,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "expiry_date": self.expiry_date.isoformat() if self.expiry_date else None,
            "basis": self.basis,
        }

    def display(self) -> dict[str, Any]:
        """The rule in the archivists' terms: Chinese headers, 永久/30年/10年, 全部 for no group."""
        record = self.to_record()
        shown = {"行": self.row, **{header: record[field] for field, header in COLUMNS.items()}}
        shown["材料类别"] = self.group or ALL_GROUPS
        shown["保管期限"] = self.period.label if self.period else None
        return shown

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Rule:
        """Rebuild from `to_record()` output; anything else is refused with the row and field named."""
        row = record.get("row")
        if not isinstance(row, int) or row < 1:
            raise RetentionTableError(f"stored rule has no valid row number: {row!r}")
        unknown = set(record) - set(_RECORD_KEYS)
        if unknown:
            raise RetentionTableError(f"stored rule row {row}: unknown fields {sorted(unknown)}")
        try:
            scope = record.get("scope")
            if scope not in (SCOPE_ARCHIVED, SCOPE_NOT_ARCHIVED):
                raise ValueError(f"scope {scope!r} is not 归档 or 不归档")
            period = record.get("period")
            mt = record.get("matter_type")
            if mt is not None and not type_codes(mt):
                raise ValueError(f"matter_type {mt!r} is not a known 事项类型")
            group = record.get("group")
            if group is not None and group not in GROUPS:
                raise ValueError(f"group {group!r} is not one of {GROUPS}")
            rule = cls(
                row=row,
                sheet=record.get("sheet"),
                archived=scope == SCOPE_ARCHIVED,
                period=RetentionPeriod(period) if period else None,
                service_code=record.get("service_code") or None,
                service_name=record.get("service_name") or None,
                matter_type=mt or None,
                agency=record.get("agency") or None,
                group=group or None,
                category_code=record.get("category_code") or DEFAULT_CATEGORY,
                org_code=record.get("org_code") or "",
                effective_date=_iso_date(record.get("effective_date")),
                expiry_date=_iso_date(record.get("expiry_date")),
                basis=record.get("basis") or None,
            )
        except (ValueError, TypeError) as exc:
            raise RetentionTableError(f"stored rule row {row}: {exc}") from exc
        if rule.archived and rule.period is None:
            raise RetentionTableError(f"stored rule row {row}: archived rule without a period")
        return rule


_RECORD_KEYS = (
    "row",
    "sheet",
    "service_code",
    "service_name",
    "matter_type",
    "agency",
    "group",
    "scope",
    "period",
    "category_code",
    "org_code",
    "effective_date",
    "expiry_date",
    "basis",
)


def _iso_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class RuleIndex:
    """Rules by the key each level matches on, so a matter costs a few dict look-ups, not a scan."""

    by_code_group: Mapping[tuple[str, str], tuple[Rule, ...]]
    by_code: Mapping[str, tuple[Rule, ...]]
    by_type_agency: Mapping[tuple[str, str], tuple[Rule, ...]]
    by_type: Mapping[str, tuple[Rule, ...]]
    default: tuple[Rule, ...]
    any_by_code: Mapping[str, tuple[Rule, ...]]  # every rule naming a 事项编码, with or without a group

    @classmethod
    def build(cls, rules: Iterable[Rule]) -> RuleIndex:
        code_group: dict[tuple[str, str], list[Rule]] = defaultdict(list)
        code: dict[str, list[Rule]] = defaultdict(list)
        type_agency: dict[tuple[str, str], list[Rule]] = defaultdict(list)
        mtype: dict[str, list[Rule]] = defaultdict(list)
        any_code: dict[str, list[Rule]] = defaultdict(list)
        default: list[Rule] = []
        for rule in rules:
            level = rule.level
            if rule.service_code:
                any_code[rule.service_code].append(rule)
            if level == LEVEL_CODE_GROUP:
                code_group[(rule.service_code or "", rule.group or "")].append(rule)
            elif level == LEVEL_CODE:
                code[rule.service_code or ""].append(rule)
            elif level == LEVEL_TYPE_AGENCY:
                for c in rule.type_codes:
                    type_agency[(c, rule.agency or "")].append(rule)
            elif level == LEVEL_TYPE:
                for c in rule.type_codes:
                    mtype[c].append(rule)
            else:
                default.append(rule)

        def frozen(d: dict[Any, list[Rule]]) -> Mapping[Any, tuple[Rule, ...]]:
            return MappingProxyType({k: tuple(v) for k, v in d.items()})

        return cls(
            by_code_group=frozen(code_group),
            by_code=frozen(code),
            by_type_agency=frozen(type_agency),
            by_type=frozen(mtype),
            default=tuple(default),
            any_by_code=frozen(any_code),
        )


class RetentionTable:
    """A validated set of rules plus the label the ledger knows them by.

    `version` is what appraisals record; the ledger sets it to its own version id, and until then
    it is the first 12 hex digits of `content_hash`.
    """

    def __init__(self, rules: Iterable[Rule], *, version: str | None = None, source: str | None = None) -> None:
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: r.row))
        self.source = source  # where the rules were read from, for messages only (not hashed)
        self._version = version

    @property
    def version(self) -> str:
        return self._version or self.content_hash[:12]

    @version.setter
    def version(self, value: str | None) -> None:
        self._version = value

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the rules in row order.

        The row number is part of a rule (packages record it), the sheet name and file are not, so
        one table saved as XLSX or CSV hashes alike while moving a rule to another row does not.
        """
        canonical = [{k: v for k, v in r.to_record().items() if k != "sheet"} for r in self.rules]
        blob = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    @cached_property
    def index(self) -> RuleIndex:
        return RuleIndex.build(self.rules)

    def rule_at(self, row: int) -> Rule | None:
        for rule in self.rules:
            if rule.row == row:
                return rule
        return None

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-able rows the ledger stores; `from_records` rebuilds an equal table (same hash)."""
        return [r.to_record() for r in self.rules]

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], *, version: str | None = None, source: str | None = None
    ) -> RetentionTable:
        rules = [Rule.from_record(rec) for rec in records]
        seen: set[int] = set()
        for rule in rules:
            if rule.row in seen:
                raise RetentionTableError(f"stored table has row {rule.row} twice")
            seen.add(rule.row)
        return cls(rules, version=version, source=source)

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RetentionTable(version={self.version!r}, rules={len(self.rules)})"
