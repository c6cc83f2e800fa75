"""Loading a retention table from a file (or from rows built in code) into rules plus findings.

How XLSX, CSV and YAML are read, and how rows are numbered, is `retention.tabular`; how one row
becomes a `Rule` and how rules are checked against each other is `retention.validate`. The same
table in any of the three formats gives the same rows and the same content hash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from retention.files import open_tabular
from retention.table import COLUMNS, EXAMPLE_MARK, RetentionTable, Rule
from retention.tabular import HeaderSpec, Place, Tabular, cell_text, iter_cells, map_headers, mappings_tabular
from retention.validate import check_conflicts, rule_from_row
from schemas.findings import Finding, Severity

# field -> accepted spellings of its header (compared after folding width, case, spaces, _ and -).
TABLE_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "service_code": ("事项编码", "service_code", "事项代码"),
        "service_name": ("事项名称", "service_name"),
        "matter_type": ("事项类型", "matter_type"),
        "agency": ("实施机构", "agency"),
        "group": ("材料类别", "group", "document_group"),
        "scope": ("归档范围", "scope"),
        "period": ("保管期限", "retention_period", "period"),
        "category_code": ("门类代码", "category_code", "category"),
        "org_code": ("机构问题代码", "org_code"),
        "effective_date": ("生效日期", "effective_date"),
        "expiry_date": ("失效日期", "expiry_date"),
        "basis": ("依据", "basis"),
    }
)
TABLE_SPEC = HeaderSpec(TABLE_ALIASES, required=("scope", "period"))

RowsRead = Callable[[int, int | None], None]  # (rows read and checked, rows after the header or None if unknown)
PROGRESS_EVERY = 100  # rows between two reports: a bar needs no more, a big table pays nothing


@dataclass(slots=True)
class LoadResult:
    """The rules read from one file and every finding about them; `table` holds only error-free rows."""

    table: RetentionTable
    findings: list[Finding]
    file: str
    sheet: str | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def report(self) -> ValidationReport:
        return ValidationReport(self.errors, self.warnings, len(self.table.rules))


@dataclass(slots=True)
class ValidationReport:
    """What `guidang retention validate` shows: every error and warning, and how many rules are good."""

    errors: list[Finding]
    warnings: list[Finding]
    rules: int

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self, *, with_codes: bool = False) -> dict[str, Any]:
        """{"errors": [{"sheet","row","column","value","message"}], "warnings": [...], "rules": n};
        `with_codes` adds each finding's "code" for callers that want to act on it."""

        def item(f: Finding) -> dict[str, Any]:
            d = {k: f.details.get(k) for k in ("sheet", "row", "column", "value")}
            d["message"] = f.message
            if with_codes:
                d["code"] = f.code
            return d

        return {
            "errors": [item(f) for f in self.errors],
            "warnings": [item(f) for f in self.warnings],
            "rules": self.rules,
        }


def load_table(
    path: str | os.PathLike[str], *, version: str | None = None, progress: RowsRead | None = None
) -> LoadResult:
    """Read and check a retention table file (.xlsx/.xlsm, .csv, .yaml/.yml) in one pass.

    Never raises for bad content: an unreadable file, a missing column or a wrong cell is a finding.
    A province's table takes a while: `progress` is told how far the rows have been read and checked.
    """
    with open_tabular(path, TABLE_SPEC) as tab:
        return _finish(tab, version=version, source=str(path), progress=progress)


def validate_table(path: str | os.PathLike[str]) -> ValidationReport:
    """`load_table(path).report`: the JSON-able verdict on a table file."""
    return load_table(path).report


def load_records(
    rows: Sequence[Mapping[str, Any] | None], *, source: str = "<rows>", version: str | None = None
) -> LoadResult:
    """Check rows given as mappings (Chinese headers or English aliases as keys), as if they were a
    sheet: item i is row i + 2. What YAML loading uses, and handy for tables built in code."""
    with mappings_tabular(rows, Place(source)) as tab:
        return _finish(tab, version=version, source=source)


def _finish(tab: Tabular, *, version: str | None, source: str, progress: RowsRead | None = None) -> LoadResult:
    findings: list[Finding] = []
    rules: list[Rule] = []
    if tab.headers:
        rules, row_findings, headers = _read_rules(tab, progress)
        findings.extend(row_findings)
        findings.extend(check_conflicts(rules, tab.place, headers))
    findings[:0] = tab.findings  # after the rows: reading them may have added some (a formula cell)
    if not rules and not any(f.severity == Severity.ERROR for f in findings):
        findings.append(tab.place.finding("R-TABLE-EMPTY", "the table has no rules", row=None, column=None))
    findings.sort(key=lambda f: f.details.get("row") or 0)  # stable: a row's findings stay in column order
    return LoadResult(RetentionTable(rules, version=version, source=source), findings, source, tab.place.sheet)


def _read_rules(tab: Tabular, progress: RowsRead | None) -> tuple[list[Rule], list[Finding], dict[str, str]]:
    columns, findings = map_headers(tab, TABLE_SPEC)
    headers = {fld: cell_text(tab.headers[i]).strip() for fld, i in columns.items()}
    rules: list[Rule] = []
    total = None if tab.rows_in_file is None else max(tab.rows_in_file - tab.header_row, 0)
    row_no = tab.header_row
    for row_no, cells, extra in iter_cells(tab, columns, "R-COLUMN-UNKNOWN"):
        if progress is not None and (row_no - tab.header_row) % PROGRESS_EVERY == 0:
            progress(row_no - tab.header_row, total)
        findings.extend(extra)
        rule, row_findings = rule_from_row(cells, row=row_no, place=tab.place)
        findings.extend(row_findings)
        name = cells.get("service_name")
        if name is not None and cell_text(name.value).strip().startswith(EXAMPLE_MARK):
            message = f"this is the template's example row ({EXAMPLE_MARK}); replace it with a real rule or delete it"
            findings.append(tab.place.cell_finding("R-EXAMPLE-ROW", message, row=row_no, cell=name,
                                                   severity=Severity.WARNING))
        if rule is not None:
            rules.append(rule)
    if progress is not None:  # every row read, the blank ones after the last too
        done = max(total or 0, row_no - tab.header_row)
        progress(done, done)
    return rules, findings, headers


__all__ = [
    "COLUMNS",
    "TABLE_ALIASES",
    "LoadResult",
    "ValidationReport",
    "load_records",
    "load_table",
    "validate_table",
]
