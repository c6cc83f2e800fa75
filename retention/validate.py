"""Checking a table's content: one row into a `Rule` (or findings), then the rules against each other.

No file I/O here (`tabular.py` reads files), so the same checks serve XLSX, CSV, YAML and anything a
caller builds in memory. Every problem in a row is reported, not the first one, and every finding
names the sheet, the row the archivist sees in Excel and the column as the file spells it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from retention.table import (
    ALL_GROUPS,
    COLUMNS,
    DEFAULT_CATEGORY,
    SCOPE_ARCHIVED,
    SCOPE_NOT_ARCHIVED,
    Rule,
    fold_width,
)
from retention.tabular import Cell, Place, cell_text
from schemas.findings import Finding, Severity
from schemas.model import MATTER_TYPES, DocumentGroup, RetentionPeriod

SERVICE_CODE_RE = re.compile(r"[A-Za-z0-9-]{4,64}")
CODE_PART_RE = re.compile(r"[A-Z0-9]{1,8}")

_PERIODS = {
    "永久": RetentionPeriod.PERMANENT,
    "Y": RetentionPeriod.PERMANENT,
    "30年": RetentionPeriod.D30,
    "D30": RetentionPeriod.D30,
    "10年": RetentionPeriod.D10,
    "D10": RetentionPeriod.D10,
}
_DATE_RES = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
# Columns whose values are codes or choices: full-width forms are folded to ASCII there. Free text
# (事项名称, 依据) keeps its characters and only loses leading/trailing spaces.
_FREE_TEXT = frozenset({"service_name", "basis"})
# Choices and dates: a space inside ("30 年", "不 归档") is as stray as one around them. Codes keep
# inner spaces so that they are reported as malformed: a code is not guessed at.
_SPACELESS = frozenset({"group", "scope", "period", "effective_date", "expiry_date"})
_SPACE_RE = re.compile(r"\s+")
_OUTCOME_COLUMNS = ("scope", "period", "category_code", "org_code")


def parse_period(text: str) -> RetentionPeriod | None:
    """永久/30年/10年/Y/D30/D10 (letters in any case); None when not one of them."""
    return _PERIODS.get(text) or _PERIODS.get(text.upper())


def parse_scope(text: str) -> bool | None:
    if text == SCOPE_ARCHIVED:
        return True
    if text == SCOPE_NOT_ARCHIVED:
        return False
    return None


def parse_group(text: str) -> tuple[bool, str | None]:
    """(known, group): blank and 全部 mean every group (None); 申报/申报材料/application etc. one group."""
    if text in ("", ALL_GROUPS, "全部材料") or text.lower() == "all":
        return True, None
    try:
        return True, DocumentGroup.parse(text).short
    except ValueError:
        return False, None


def parse_matter_type(text: str) -> str | None:
    """事项类型 as a code (01, 1), a name (行政许可) or both (01 行政许可); None when unknown.

    Returns the code, or the name itself when the name belongs to several codes (公共服务)."""
    t = text.strip()
    if t.isdigit():
        code = t.zfill(2)
        return code if code in MATTER_TYPES else None
    m = re.fullmatch(r"(\d{1,2})\s*[-·.、 ]?\s*(\D+)", t)
    if m:
        code = m.group(1).zfill(2)
        return code if MATTER_TYPES.get(code) == m.group(2).strip() else None
    codes = [c for c, name in MATTER_TYPES.items() if name == t]
    if len(codes) == 1:
        return codes[0]
    return t if codes else None


def parse_date(value: Any) -> date | None:
    """Excel date cells, and text as 2026-01-01, 2026/1/1, 2026.1.1, 2026年1月1日 or 20260101."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = cell_text(value).strip()
    for pattern in _DATE_RES:
        m = pattern.fullmatch(text)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return None
    return None


def _normalise(field: str, cell: Cell, place: Place, row: int, findings: list[Finding]) -> str:
    """Clean one cell's text; a change the archivist did not see is reported, not silent."""
    if isinstance(cell.value, (date, datetime)):
        return cell_text(cell.value)
    raw = cell_text(cell.value)
    clean = raw.strip() if field in _FREE_TEXT else fold_width(raw)
    if field in _SPACELESS:
        clean = _SPACE_RE.sub("", clean)
    if clean != raw and raw.strip():
        findings.append(
            place.finding(
                "R-NORMALISED",
                f"{cell.column} {raw!r} was read as {clean!r} (full-width characters or stray spaces)",
                row=row,
                column=cell.column,
                value=raw,
                letter=cell.letter,
                severity=Severity.WARNING,
            )
        )
    return clean


def rule_from_row(cells: Mapping[str, Cell], *, row: int, place: Place) -> tuple[Rule | None, list[Finding]]:
    """One row (field name -> cell) into a Rule, with every problem the row has.

    The Rule is None when the row has an error: a row that is wrong is never half-applied.
    """
    findings: list[Finding] = []
    text: dict[str, str] = {}
    for field, cell in cells.items():
        text[field] = _normalise(field, cell, place, row, findings)

    def err(field: str, code: str, message: str, severity: Severity = Severity.ERROR) -> None:
        cell = cells.get(field) or Cell(COLUMNS[field], None)
        findings.append(place.cell_finding(code, message, row=row, cell=cell, severity=severity))

    service_code = text.get("service_code") or None
    if service_code is not None and not SERVICE_CODE_RE.fullmatch(service_code):
        err(
            "service_code",
            "R-SERVICE-CODE-MALFORMED",
            f"事项编码 {service_code!r} must be 4–64 characters of A–Z, a–z, 0–9 and '-', without spaces",
        )

    matter_type: str | None = None
    if text.get("matter_type"):
        matter_type = parse_matter_type(text["matter_type"])
        if matter_type is None:
            known = ", ".join(f"{c} {n}" for c, n in MATTER_TYPES.items())
            err("matter_type", "R-MATTER-TYPE-UNKNOWN", f"事项类型 {text['matter_type']!r} is not one of: {known}")

    agency = text.get("agency") or None
    group_ok, group = parse_group(text.get("group", ""))
    if not group_ok:
        err("group", "R-GROUP-UNKNOWN", f"材料类别 {text['group']!r} is not 申报, 过程, 结果 or 全部 (blank = 全部)")
    elif group is not None and service_code is None:
        err("group", "R-GROUP-WITHOUT-CODE", f"材料类别 {group} applies only to a rule with a 事项编码")
    if agency is not None and service_code is None and not text.get("matter_type"):
        err("agency", "R-AGENCY-WITHOUT-TYPE", f"实施机构 {agency!r} needs a 事项类型 (or a 事项编码) beside it")

    archived: bool | None = None
    scope_text = text.get("scope", "")
    if "scope" not in cells:
        pass  # the missing column is reported once, at the header
    elif not scope_text:
        err("scope", "R-SCOPE-MISSING", "归档范围 is empty (expected 归档 or 不归档)")
    else:
        archived = parse_scope(scope_text)
        if archived is None:
            err("scope", "R-SCOPE-UNKNOWN", f"归档范围 {scope_text!r} is not 归档 or 不归档")

    period: RetentionPeriod | None = None
    period_text = text.get("period", "")
    if period_text:
        period = parse_period(period_text)
        if period is None:
            err("period", "R-PERIOD-UNKNOWN", f"保管期限 {period_text!r} is not one of 永久, 30年, 10年 (Y, D30, D10)")
        elif archived is False:
            err(
                "period",
                "R-PERIOD-IGNORED",
                f"保管期限 {period_text!r} is ignored on a 不归档 rule",
                Severity.WARNING,
            )
            period = None
    elif archived and "period" in cells:
        err("period", "R-PERIOD-MISSING", "保管期限 is empty on an 归档 rule (expected 永久, 30年 or 10年)")

    category = text.get("category_code") or DEFAULT_CATEGORY
    org = text.get("org_code", "")
    for field, value in (("category_code", category), ("org_code", org)):
        if value and not CODE_PART_RE.fullmatch(value):
            err(
                field,
                "R-CODE-PART-INVALID",
                f"{COLUMNS[field]} {value!r} may only hold A–Z and 0–9, 1–8 characters "
                "(no ·, -, spaces or lower case): it becomes part of the 档号",
            )

    dates: dict[str, date | None] = {}
    for field in ("effective_date", "expiry_date"):
        cell = cells.get(field)
        dates[field] = None
        if cell is None or not text.get(field):
            continue
        parsed = parse_date(cell.value if isinstance(cell.value, (date, datetime)) else text[field])
        if parsed is None:
            err(field, "R-DATE-INVALID", f"{COLUMNS[field]} {text[field]!r} is not a date (e.g. 2026-01-01)")
        dates[field] = parsed
    eff, exp = dates["effective_date"], dates["expiry_date"]
    if eff and exp and exp <= eff:
        err(
            "expiry_date",
            "R-DATES-REVERSED",
            f"失效日期 {exp.isoformat()} must be after 生效日期 {eff.isoformat()}",
        )

    if any(f.severity == Severity.ERROR for f in findings) or archived is None:
        return None, findings
    return (
        Rule(
            row=row,
            sheet=place.sheet,
            archived=archived,
            period=period,
            service_code=service_code,
            service_name=text.get("service_name") or None,
            matter_type=matter_type,
            agency=agency,
            group=group,
            category_code=category,
            org_code=org,
            effective_date=eff,
            expiry_date=exp,
            basis=text.get("basis") or None,
        ),
        findings,
    )


def _describe(rule: Rule) -> str:
    key = {
        4: f"事项编码 {rule.service_code} 材料类别 {rule.group}",
        3: f"事项编码 {rule.service_code}",
        2: f"事项类型 {rule.matter_type} 实施机构 {rule.agency}",
        1: f"事项类型 {rule.matter_type}",
        0: "default rule (no 事项编码, no 事项类型)",
    }[rule.level]
    return key


def _window(rule: Rule) -> str:
    return f"in force {rule.effective_date or '…'} to {rule.expiry_date or '…'}"


def _outcome_text(rule: Rule) -> str:
    parts = [rule.scope]
    if rule.period:
        parts.append(rule.period.label)
    parts.append(f"门类代码 {rule.category_code}")
    if rule.org_code:
        parts.append(f"机构问题代码 {rule.org_code}")
    return " ".join(parts)


def check_conflicts(rules: Iterable[Rule], place: Place, headers: Mapping[str, str] | None = None) -> list[Finding]:
    """Equally specific rules in force on a common day: an error if their outcomes differ, a warning
    if they repeat each other. Each pair is reported once, at the later row, naming both rows."""
    headers = headers or {}
    by_key: dict[tuple[int, tuple[str, ...]], list[Rule]] = defaultdict(list)
    for rule in rules:
        for key in rule.index_keys():
            by_key[key].append(rule)
    findings: list[Finding] = []
    reported: set[tuple[int, int]] = set()
    for same_key in by_key.values():
        if len(same_key) < 2:
            continue
        # sweep in order of start: only rules that have not ended yet can overlap the next one
        ordered = sorted(same_key, key=lambda r: (r.effective_date or date.min, r.row))
        active: list[Rule] = []
        for rule in ordered:
            start = rule.effective_date or date.min
            active = [a for a in active if (a.expiry_date or date.max) > start]
            for other in active:
                first, second = sorted((other, rule), key=lambda r: r.row)
                pair = (first.row, second.row)
                if pair in reported or first.row == second.row:
                    continue
                reported.add(pair)
                findings.append(_pair_finding(first, second, place, headers))
            active.append(rule)
    findings.sort(key=lambda f: (f.details["row"], f.details["other_row"]))
    return findings


def _pair_finding(first: Rule, second: Rule, place: Place, headers: Mapping[str, str]) -> Finding:
    differing = [f for f, a, b in zip(_OUTCOME_COLUMNS, first.outcome, second.outcome, strict=True) if a != b]
    if differing:
        column = headers.get(differing[0], COLUMNS[differing[0]])
        value = {
            "scope": second.scope,
            "period": second.period.value if second.period else None,
            "category_code": second.category_code,
            "org_code": second.org_code,
        }[differing[0]]
        return place.finding(
            "R-RULE-CONFLICT",
            f"rows {first.row} and {second.row} are equally specific ({_describe(second)}) and both apply, "
            f"but row {first.row} ({_window(first)}) says {_outcome_text(first)} "
            f"and row {second.row} ({_window(second)}) says {_outcome_text(second)}",
            row=second.row,
            column=column,
            value=value,
            other_row=first.row,
        )
    return place.finding(
        "R-RULE-DUPLICATE",
        f"rows {first.row} and {second.row} are equally specific ({_describe(second)}) and say the same; "
        f"row {first.row} is the one that will be recorded",
        row=second.row,
        column=headers.get("scope", COLUMNS["scope"]),
        value=second.scope,
        severity=Severity.WARNING,
        other_row=first.row,
    )
