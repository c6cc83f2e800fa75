"""档号 (archival reference code) after DA/T 13-2022: compose one from its parts and take one apart.

The template is per fonds (schemas.config.Fonds.archival_code_template) and names the parts
{fonds}, {category}, {year}, {period}, {org} and {item} (件号, usually `{item:04d}`).

Empty 机构问题代码: many units file without one, and the code must not then read `D30·-0001`. Rule:
when org is empty, the `{org}` field is dropped together with the one separator character
(any of `· - . _ /` or a space) directly before it in the template; if `{org}` opens the template,
the separator directly after it goes instead. So `Z109-WS·2026·D30·XK-0001` becomes
`Z109-WS·2026·D30-0001` without an org, and parsing accepts both shapes.
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass
from typing import Any

from retention.validate import CODE_PART_RE, parse_period
from schemas.findings import Finding, GuidangError
from schemas.model import RetentionPeriod

DEFAULT_TEMPLATE = "{fonds}-{category}·{year}·{period}·{org}-{item:04d}"
_FIELDS = ("fonds", "category", "year", "period", "org", "item")
_SEPARATORS = "·-._/ "
_FONDS_RE = re.compile(r"[A-Za-z0-9]{1,16}")
_STRICT = {
    "fonds": r"[A-Za-z0-9]{1,16}",
    "category": r"[A-Z0-9]{1,8}",
    "year": r"[0-9]{4}",
    "period": r"Y|D30|D10",
    "org": r"[A-Z0-9]{1,8}",
}
_PART_NAMES = {
    "fonds": "全宗号",
    "category": "门类代码",
    "year": "年度",
    "period": "保管期限",
    "org": "机构问题代码",
    "item": "件号",
}


class ArchivalCodeError(GuidangError):
    """A 档号 (or its template, or a part given to compose one) is not well-formed."""

    def __init__(self, message: str, code: str | None = None) -> None:
        where = f"档号 {code}" if code else "档号"
        super().__init__(message, [Finding("R-ARCHIVAL-CODE-INVALID", where, message)])


@dataclass(frozen=True, slots=True)
class ArchivalCodeParts:
    fonds: str
    category: str
    year: int
    period: RetentionPeriod
    org: str
    item: int

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["period"] = self.period.value
        return d


@dataclass(frozen=True, slots=True)
class _Token:
    literal: str
    field: str | None = None
    spec: str = ""


def _tokens(template: str) -> list[_Token]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ArchivalCodeError(f"档号 template {template!r} is not a valid template: {exc}") from exc
    tokens: list[_Token] = []
    seen: set[str] = set()
    for literal, field, spec, conversion in parsed:
        if literal:
            tokens.append(_Token(literal))
        if field is None:
            continue
        if field not in _FIELDS or conversion:
            raise ArchivalCodeError(
                f"档号 template {template!r}: unknown part {{{field}}} (allowed: {', '.join(_FIELDS)})"
            )
        if field in seen:
            raise ArchivalCodeError(f"档号 template {template!r} names {{{field}}} twice")
        seen.add(field)
        if spec and (field != "item" or not re.fullmatch(r"0?\d*d?", spec)):
            raise ArchivalCodeError(f"档号 template {template!r}: format {spec!r} is only allowed as {{item:04d}}")
        tokens.append(_Token("", field, spec or ""))
    missing = [f for f in _FIELDS if f not in seen and f != "org"]
    if missing:
        raise ArchivalCodeError(f"档号 template {template!r} lacks {', '.join('{' + m + '}' for m in missing)}")
    return tokens


def _drop_org(tokens: list[_Token]) -> list[_Token]:
    """The template without `{org}` and its one separator (see the module docstring)."""
    out = list(tokens)
    i = next((k for k, t in enumerate(out) if t.field == "org"), None)
    if i is None:
        return out
    del out[i]
    if i > 0 and out[i - 1].field is None and out[i - 1].literal[-1:] in _SEPARATORS:
        out[i - 1] = _Token(out[i - 1].literal[:-1])
    elif i == 0 and i < len(out) and out[i].field is None and out[i].literal[:1] in _SEPARATORS:
        out[i] = _Token(out[i].literal[1:])
    return [t for t in out if t.field or t.literal]


def _check_parts(parts: dict[str, Any], code: str | None = None) -> list[str]:
    problems: list[str] = []
    if not _FONDS_RE.fullmatch(str(parts["fonds"])):
        problems.append(f"全宗号 {parts['fonds']!r} must be 1–16 letters or digits")
    if not CODE_PART_RE.fullmatch(str(parts["category"])):
        problems.append(f"门类代码 {parts['category']!r} must be 1–8 of A–Z and 0–9")
    if parts["org"] and not CODE_PART_RE.fullmatch(str(parts["org"])):
        problems.append(f"机构问题代码 {parts['org']!r} must be empty or 1–8 of A–Z and 0–9")
    year = parts["year"]
    if not (isinstance(year, int) and 1000 <= year <= 9999):
        problems.append(f"年度 {year!r} must be a four-digit year")
    if not isinstance(parts["period"], RetentionPeriod):
        problems.append(f"保管期限 {parts['period']!r} must be Y, D30 or D10")
    item = parts["item"]
    if not (isinstance(item, int) and item >= 1):
        problems.append(f"件号 {item!r} must be a whole number from 1")
    return problems


def compose_archival_code(
    template: str = DEFAULT_TEMPLATE,
    *,
    fonds: str,
    category: str,
    year: int,
    period: RetentionPeriod | str,
    org: str = "",
    item: int,
) -> str:
    """Fill the template, e.g. Z109-WS·2026·D30·XK-0001; raises ArchivalCodeError naming every bad part."""
    p = period if isinstance(period, RetentionPeriod) else (parse_period(str(period)) or period)
    parts: dict[str, Any] = {
        "fonds": fonds,
        "category": category,
        "year": year,
        "period": p,
        "org": org or "",
        "item": item,
    }
    problems = _check_parts(parts)
    if problems:
        raise ArchivalCodeError("cannot compose a 档号: " + "; ".join(problems))
    tokens = _tokens(template)
    if not parts["org"]:
        tokens = _drop_org(tokens)
    out: list[str] = []
    for t in tokens:
        if t.field is None:
            out.append(t.literal)
        else:
            value = parts[t.field]
            value = value.value if isinstance(value, RetentionPeriod) else value
            out.append(format(value, t.spec))
    return "".join(out)


def _regex(tokens: list[_Token], loose: bool) -> re.Pattern[str]:
    """Pattern for the template; the org field and its separator are one optional group."""
    pieces: list[str] = []
    org_i = next((k for k, t in enumerate(tokens) if t.field == "org"), None)
    for k, t in enumerate(tokens):
        if t.field is None:
            lit = t.literal
            if org_i is not None and k == org_i - 1 and lit[-1:] in _SEPARATORS:
                pieces.append(re.escape(lit[:-1]))
            elif org_i == 0 and k == 1 and lit[:1] in _SEPARATORS:
                pieces.append(re.escape(lit[1:]))
            else:
                pieces.append(re.escape(lit))
            continue
        if loose:
            body = f"(?P<{t.field}>.*?)"
        elif t.field == "item":
            width = int(re.sub(r"\D", "", t.spec) or 1)
            body = f"(?P<item>[0-9]{{{width},}})"
        else:
            body = f"(?P<{t.field}>{_STRICT[t.field]})"
        if t.field == "org":
            before = tokens[k - 1].literal[-1:] if k > 0 and tokens[k - 1].field is None else ""
            after = tokens[k + 1].literal[:1] if k == 0 and len(tokens) > 1 and tokens[1].field is None else ""
            if before in _SEPARATORS and before:
                body = f"(?:{re.escape(before)}{body})?"
            elif after in _SEPARATORS and after:
                body = f"(?:{body}{re.escape(after)})?"
        pieces.append(body)
    return re.compile("".join(pieces))


def parse_archival_code(code: str, template: str = DEFAULT_TEMPLATE) -> ArchivalCodeParts:
    """Take a 档号 apart by its template; raises ArchivalCodeError saying which part is wrong."""
    tokens = _tokens(template)
    m = _regex(tokens, loose=False).fullmatch(code)
    if m and int(m.group("item")) >= 1:
        period = RetentionPeriod(m.group("period"))
        org = m.groupdict().get("org") or ""
        return ArchivalCodeParts(
            m.group("fonds"), m.group("category"), int(m.group("year")), period, org, int(m.group("item"))
        )
    example = compose_archival_code(template, fonds="Z109", category="WS", year=2026, period="D30", org="XK", item=1)
    loose = _regex(tokens, loose=True).fullmatch(code)
    if not loose:
        raise ArchivalCodeError(
            f"档号 {code!r} does not have the shape of template {template!r} (e.g. {example})", code
        )
    raw = loose.groupdict()
    problems: list[str] = []
    for name in _FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        if name == "item":
            width = int(re.sub(r"\D", "", next(t.spec for t in tokens if t.field == "item")) or 1)
            if not re.fullmatch(rf"[0-9]{{{width},}}", value) or int(value) < 1:
                problems.append(f"件号 {value!r} must be at least {width} digits from 1")
        elif not re.fullmatch(_STRICT[name], value):
            problems.append(f"{_PART_NAMES[name]} {value!r} is not allowed here")
    detail = "; ".join(problems) or "its parts do not line up with the template"
    raise ArchivalCodeError(
        f"档号 {code!r} is not well-formed for template {template!r} (e.g. {example}): {detail}", code
    )
