"""归档范围和保管期限表: load (XLSX/CSV/YAML), validate, the one decision (which rule decides a matter,
with its trace: `retention.decision`, under `appraise`, `explain` and `explain_matter`), 档号,
disposition dates.

Plain library that imports only `schemas`; the `guidang retention ...` commands and the ledger's
table versions are wired on top of these functions elsewhere.
"""

from retention.archival_code import (
    DEFAULT_TEMPLATE,
    ArchivalCodeError,
    ArchivalCodeParts,
    compose_archival_code,
    parse_archival_code,
)
from retention.coverage import CatalogueItem, CoverageReport, coverage, is_covered, load_catalogue
from retention.diff import diff_tables
from retention.explain import explain, explain_matter
from retention.load import LoadResult, ValidationReport, load_records, load_table, validate_table
from retention.match import AppraisalError, appraise, disposition_date
from retention.table import COLUMNS, RetentionTable, RetentionTableError, Rule
from retention.template import write_table_xlsx, write_template

__all__ = [
    "COLUMNS",
    "DEFAULT_TEMPLATE",
    "AppraisalError",
    "ArchivalCodeError",
    "ArchivalCodeParts",
    "CatalogueItem",
    "CoverageReport",
    "LoadResult",
    "RetentionTable",
    "RetentionTableError",
    "Rule",
    "ValidationReport",
    "appraise",
    "compose_archival_code",
    "coverage",
    "diff_tables",
    "disposition_date",
    "explain",
    "explain_matter",
    "is_covered",
    "load_catalogue",
    "load_records",
    "load_table",
    "parse_archival_code",
    "validate_table",
    "write_table_xlsx",
    "write_template",
]
