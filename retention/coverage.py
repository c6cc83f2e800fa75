"""Coverage: which matter types of the catalogue (事项目录) have no applicable rule on a date.

An entry is covered when appraisal would find a rule for it at some level for some group (a
不归档 rule counts: it is a decision). What stays uncovered is what would be quarantined with
Q-RETENTION-NO-RULE, which is why archivists run this before a new table version goes live.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from retention.files import open_tabular
from retention.load import TABLE_ALIASES
from retention.table import RetentionTable, as_date, fold_width, type_codes
from retention.tabular import HeaderSpec, cell_text, iter_cells, map_headers
from retention.validate import SERVICE_CODE_RE, parse_matter_type
from schemas.findings import Finding, Severity

# A 事项目录 names its columns as the table does (the same spellings are accepted).
CATALOGUE_SPEC = HeaderSpec(
    MappingProxyType({f: TABLE_ALIASES[f] for f in ("service_code", "service_name", "matter_type", "agency")}),
    required=("service_code",),
)


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """One catalogue entry; `matter_type` is the code (or the shared name 公共服务), None if unknown."""

    service_code: str
    service_name: str | None = None
    matter_type: str | None = None
    agency: str | None = None
    row: int | None = None


@dataclass(slots=True)
class CoverageReport:
    catalogue: int
    covered: int
    uncovered: list[str]
    by_agency: dict[str, dict[str, int]] = field(default_factory=dict)
    by_matter_type: dict[str, dict[str, int]] = field(default_factory=dict)
    on_date: str = ""
    table_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """{"catalogue", "covered", "uncovered": [事项编码…], "by_agency": {机构: {"catalogue",
        "covered", "uncovered"}}, "by_matter_type": {code: {...}}, "date", "table_version"}"""
        return {
            "catalogue": self.catalogue,
            "covered": self.covered,
            "uncovered": list(self.uncovered),
            "by_agency": {k: dict(v) for k, v in self.by_agency.items()},
            "by_matter_type": {k: dict(v) for k, v in self.by_matter_type.items()},
            "date": self.on_date,
            "table_version": self.table_version,
        }


_KEYS = {
    "service_code": ("service_code", "事项编码"),
    "service_name": ("service_name", "事项名称"),
    "matter_type": ("matter_type", "事项类型"),
    "agency": ("agency", "实施机构"),
}


def _get(entry: Any, name: str) -> Any:
    if isinstance(entry, Mapping):
        for key in _KEYS[name]:
            if key in entry:
                return entry[key]
        return None
    return getattr(entry, name, None)


def is_covered(table: RetentionTable, service_code: str, matter_type: str | None, agency: str | None, on: date) -> bool:
    """Whether some rule would apply to this matter type on `on` (for at least one group)."""
    idx = table.index
    if any(r.in_force(on) for r in idx.any_by_code.get(fold_width(service_code), ())):
        return True
    parsed = parse_matter_type(fold_width(matter_type)) if matter_type else None
    agency_n = fold_width(agency) if agency else ""
    for code in type_codes(parsed):
        if agency_n and any(r.in_force(on) for r in idx.by_type_agency.get((code, agency_n), ())):
            return True
        if any(r.in_force(on) for r in idx.by_type.get(code, ())):
            return True
    return any(r.in_force(on) for r in idx.default)


def coverage(table: RetentionTable, catalogue: Iterable[Any], on_date: date | datetime | str) -> CoverageReport:
    """Entries (CatalogueItem, the simulator's CatalogueEntry, or mappings with Chinese or English
    keys) checked against the rules in force on `on_date`; uncovered codes keep catalogue order."""
    on = as_date(on_date)
    report = CoverageReport(0, 0, [], on_date=on.isoformat(), table_version=table.version)
    for entry in catalogue:
        code = cell_text(_get(entry, "service_code")).strip()
        mtype_raw = cell_text(_get(entry, "matter_type")).strip()
        agency = cell_text(_get(entry, "agency")).strip()
        parsed = parse_matter_type(fold_width(mtype_raw)) if mtype_raw else None
        ok = is_covered(table, code, mtype_raw or None, agency or None, on)
        report.catalogue += 1
        if ok:
            report.covered += 1
        else:
            report.uncovered.append(code)
        for bucket, key in ((report.by_agency, fold_width(agency)), (report.by_matter_type, parsed or mtype_raw)):
            counts = bucket.setdefault(key, {"catalogue": 0, "covered": 0, "uncovered": 0})
            counts["catalogue"] += 1
            counts["covered" if ok else "uncovered"] += 1
    return report


def load_catalogue(path: str | os.PathLike[str]) -> tuple[list[CatalogueItem], list[Finding]]:
    """Read a 事项目录 from XLSX (first sheet), CSV or YAML with the headers 事项编码, 事项名称, 事项类型,
    实施机构; rows with a malformed 事项编码 are left out, an unknown 事项类型 is kept as None."""
    items: list[CatalogueItem] = []
    with open_tabular(path, CATALOGUE_SPEC) as tab:
        findings = tab.findings  # the same list: reading the rows may add to it (a formula cell)
        if not tab.headers:
            return items, findings
        columns, header_findings = map_headers(tab, CATALOGUE_SPEC)
        findings.extend(header_findings)
        if any(f.severity == Severity.ERROR for f in header_findings):
            return items, findings
        for row_no, cells, extra in iter_cells(tab, columns, "R-COLUMN-UNKNOWN"):
            findings.extend(extra)
            text = {k: fold_width(cell_text(c.value)) for k, c in cells.items()}
            code = text.get("service_code", "")
            if not SERVICE_CODE_RE.fullmatch(code):
                message = f"事项编码 {code!r} must be 4–64 characters of A–Z, a–z, 0–9 and '-'"
                findings.append(
                    tab.place.cell_finding("R-CATALOGUE-INVALID", message, row=row_no, cell=cells["service_code"])
                )
                continue
            mtype = None
            if text.get("matter_type"):
                mtype = parse_matter_type(text["matter_type"])
                if mtype is None:
                    message = f"事项类型 {text['matter_type']!r} is not a known 事项类型"
                    findings.append(
                        tab.place.cell_finding("R-CATALOGUE-INVALID", message, row=row_no, cell=cells["matter_type"])
                    )
            items.append(
                CatalogueItem(
                    service_code=code,
                    service_name=cell_text(cells["service_name"].value).strip() or None
                    if "service_name" in cells
                    else None,
                    matter_type=mtype,
                    agency=text.get("agency") or None,
                    row=row_no,
                )
            )
    return items, findings
