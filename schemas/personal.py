"""The one place that knows where a record's personal data (个人信息) sits, whatever shape the record
was stored in: a Matter at the top level (a matters row), under `matter` (a quarantined matter the
model accepted), or under `invalid.raw` (a source row the model refused, in the source's own column
names). Pages, downloads, exports and event payloads ask here for the applicant's name and the
实施机构 instead of each looking for `applicant` at the top and missing the other two shapes.

Only a natural person's name is personal data: a company's name (its card a 统一社会信用代码) stays
readable, so rows of different companies can still be told apart by a role that sees masked text.
"""

from __future__ import annotations

import re
from typing import Any

from schemas.model import mask_id, mask_text

# Column names a refused source row may carry its applicant's name and card under (the unified
# system's and the SQL mappings' canonical names); any other column whose name says 申请人+名称 too.
RAW_NAME_KEYS = ("applicant_name", "APPLYERNAME", "申请人名称", "申请人姓名")
RAW_CARD_TYPE_KEYS = ("applicant_card_type", "APPLYERPAGETYPE", "申请人证件类型")
RAW_CARD_KEYS = ("applicant_card_number", "APPLYERPAGECODE", "申请人证件号码")
RAW_AGENCY_KEYS = ("agency", "DEPTNAME", "实施机构")
_NAME_KEY = re.compile(r"(applicant|applyer|申请人).*(name|姓名|名称)", re.IGNORECASE)
_ORGANISATION_CARD = ("信用代码", "营业执照", "组织机构", "事业单位法人", "社会团体")
_CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
_SHOP_AND_OPERATOR = re.compile(r".+[（(]([\u4e00-\u9fff·]{2,6})[）)]")
_ID_NUMBER = re.compile(r"\d{17}[\dXx]|\d{15}")


def matter_part(record: dict[str, Any] | None) -> dict[str, Any]:
    """The canonical Matter inside a stored record, or {} when the record holds a refused raw row."""
    if not isinstance(record, dict):
        return {}
    inner = record.get("matter")
    if isinstance(inner, dict):
        return inner
    return record if "project_id" in record or "applicant" in record else {}


def raw_part(record: dict[str, Any] | None) -> dict[str, Any]:
    """The source's own row of a record the model refused (quarantine's `invalid.raw`), else {}."""
    invalid = record.get("invalid") if isinstance(record, dict) else None
    raw = invalid.get("raw") if isinstance(invalid, dict) else None
    return raw if isinstance(raw, dict) else {}


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = row.get(k)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def is_organisation(card_type: str | None, card_number: str | None) -> bool:
    """A legal person or other organisation (法人或其他组织): its name is not personal data."""
    if card_type and any(word in card_type for word in _ORGANISATION_CARD):
        return True
    number = (card_number or "").strip()
    return bool(number) and not _ID_NUMBER.fullmatch(number) and bool(_CREDIT_CODE.fullmatch(number))


def personal_names(record: dict[str, Any] | None, name_keys: tuple[str, ...] = ()) -> list[str]:
    """The names of natural persons in the record (the applicant's), to be masked wherever they appear.
    `name_keys`: the source's own columns for the applicant's name (a SQL source's `columns`), for a
    refused row stored before its canonical copies were kept beside them."""
    names: list[str] = []
    applicant = matter_part(record).get("applicant")
    if (isinstance(applicant, dict) and isinstance(applicant.get("name"), str)
            and not is_organisation(applicant.get("card_type"), applicant.get("card_number"))):
        names.append(applicant["name"].strip())
    raw = raw_part(record)
    if raw and not is_organisation(_first(raw, RAW_CARD_TYPE_KEYS), _first(raw, RAW_CARD_KEYS)):
        keys = RAW_NAME_KEYS + name_keys + tuple(k for k in raw if isinstance(k, str) and _NAME_KEY.search(k))
        if (name := _first(raw, keys)) is not None:
            names.append(name)
    return [n for n in dict.fromkeys(_person(n) for n in names) if len(n) >= 2]


def _person(name: str) -> str:
    """The operator's name of a 个体工商户 written as 字号（经营者）: the person, not the shop's name."""
    m = _SHOP_AND_OPERATOR.fullmatch(name)
    return m.group(1) if m else name


def applicant_name(record: dict[str, Any] | None, name_keys: tuple[str, ...] = ()) -> str:
    """The applicant's name as stored (organisation or person), "" when the record names none."""
    applicant = matter_part(record).get("applicant")
    if isinstance(applicant, dict) and isinstance(applicant.get("name"), str):
        return applicant["name"].strip()
    raw = raw_part(record)
    keys = RAW_NAME_KEYS + name_keys + tuple(k for k in raw if isinstance(k, str) and _NAME_KEY.search(k))
    return _first(raw, keys) or ""


def agency_of(record: dict[str, Any] | None, agency_keys: tuple[str, ...] = ()) -> str | None:
    """The record's 实施机构 in any of its shapes; None when it names none (`agency_keys` as `name_keys`)."""
    agency = matter_part(record).get("agency")
    if isinstance(agency, str) and agency.strip():
        return agency.strip()
    return _first(raw_part(record), RAW_AGENCY_KEYS + agency_keys)


def mask_name(name: str) -> str:
    """A person's name with all but its first character hidden (张三丰 -> 张＊＊)."""
    return name[0] + "＊" * (len(name) - 1) if name else name


def mask_personal(text: Any, names: list[str] | tuple[str, ...] = ()) -> str:
    """`text` with every ID number, credit code and phone masked, and each of `names` (persons'
    names, longest first so that a longer name is not half-masked by a shorter one) masked too."""
    if text is None:
        return ""
    out = mask_text(str(text))
    for n in sorted({n for n in names if n and len(n) >= 2}, key=len, reverse=True):
        out = out.replace(n, mask_name(n))
    return out


def mask_card(card_number: str | None) -> str:
    return mask_id(card_number) or ""
