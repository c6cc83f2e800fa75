"""A self-built system's configuration: the field names it may map, the checks it must pass before
any query runs, and the SQL the connector derives from the queries the user wrote.

The window query (`matters_query`, `:since` / `:until`) is also wrapped as a subquery filtered on
the project-id column (one matter, for a quarantine retry); the documents query (`:project_id`)
is wrapped to list documents *without* the BLOB column, and wrapped again to read one BLOB's
length and its `substr()` slices. Identifiers in the wrappers are bare when they are plain names,
so that PostgreSQL folds them as it folded the user's own query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, bindparam, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql.elements import TextClause

from schemas.config import SqlSource
from schemas.findings import Finding, GuidangError

# Canonical names a `columns:` / `constants:` entry may use. applicant_* become Matter.applicant.
MATTER_FIELDS: tuple[str, ...] = (
    "project_id", "service_code", "service_version", "service_name", "matter_type", "handling_type",
    "agency", "agency_code", "region_code", "applicant_name", "applicant_card_type",
    "applicant_card_number", "result", "decided_at", "result_document_number", "license_name",
    "license_number", "received_at", "completed_at", "updated_at",
)
REQUIRED_MATTER_FIELDS: tuple[str, ...] = (
    "project_id", "service_code", "service_name", "matter_type", "agency", "applicant_name",
    "completed_at", "updated_at",
)
# Fields that must come from a column, never a constant: they identify the record / drive the watermark.
COLUMN_ONLY_FIELDS: tuple[str, ...] = ("project_id", "updated_at")
MATTER_DATETIMES = frozenset({"decided_at", "received_at", "completed_at", "updated_at"})
# `key` identifies one document within its matter for reading the BLOB; file_name when absent.
# `project_id`, when mapped (or when the documents query returns the matters' project-id column),
# must equal the matter's own: a query that also returns another matter's rows is caught.
DOCUMENT_FIELDS: tuple[str, ...] = (
    "project_id", "key", "group", "title", "file_name", "media_type", "size", "source_sha256", "source_sm3",
)
REQUIRED_DOCUMENT_FIELDS: tuple[str, ...] = ("group", "file_name")
STEP_FIELDS: tuple[str, ...] = ("name", "actor", "department", "opinion", "started_at", "ended_at")
STEP_DATETIMES = frozenset({"started_at", "ended_at"})
# What `count_query` / `list_query` rows carry (应归尽归). agency and matter_type may be constants
# (`constants:`), the rest must be columns; service_code and updated_at may be left out of a listing.
COUNT_FIELDS: tuple[str, ...] = ("agency", "matter_type", "count")
LIST_FIELDS: tuple[str, ...] = ("project_id", "agency", "matter_type", "service_code", "completed_at", "updated_at")
CONSTANT_OK_FIELDS = frozenset({"agency", "matter_type", "service_code"})

# fetch_matter's window: wide enough for any record, narrow enough for MySQL DATETIME's range.
ALL_TIME = (datetime(1900, 1, 1), datetime(9999, 12, 31, 23, 59, 59))


_COLUMN = r'(?P<col>(?:[A-Za-z_][\w$]*|"[^"]+"|`[^`]+`)(?:\.(?:[A-Za-z_][\w$]*|"[^"]+"|`[^`]+`))?)'
# `col > :since`, `col <= :until`, `col BETWEEN :since AND :until`, and `:since < col`
_WINDOW_BOUND = re.compile(
    _COLUMN + r"\s*(?:(?:>=|<=|<>|!=|>|<|=)\s*:(?:since|until)\b|BETWEEN\s+:since\s+AND\s+:until\b)", re.I
)
_WINDOW_BOUND_REVERSED = re.compile(r":(?:since|until)\s*(?:>=|<=|>|<|=)\s*" + _COLUMN, re.I)


def check_config(c: SqlSource) -> None:
    """Mistakes in the mapping are the operator's, not a matter's: refuse them before any query."""
    where = f"source {c.name}"
    findings: list[Finding] = []

    def bad(field: str, message: str) -> None:
        findings.append(Finding("SQL-CONFIG-INVALID", f"{where}: {field}", message))

    for section, names, allowed in (
        ("columns", c.columns, MATTER_FIELDS),
        ("constants", c.constants, MATTER_FIELDS),
        ("document_columns", c.document_columns, DOCUMENT_FIELDS),
        ("step_columns", c.step_columns, STEP_FIELDS),
    ):
        for key in names:
            if key not in allowed:
                bad(f"{section}.{key}", f"unknown field {key!r}; known: {', '.join(allowed)}")
    for key in REQUIRED_MATTER_FIELDS:
        if key not in c.columns and key not in c.constants:
            bad(f"columns.{key}", "required field is neither mapped to a column nor given as a constant")
    for key in COLUMN_ONLY_FIELDS:
        if key not in c.columns:
            bad(f"columns.{key}", "must come from a column (it identifies the record / drives the watermark)")
    for key in REQUIRED_DOCUMENT_FIELDS:
        if key not in c.document_columns:
            bad(f"document_columns.{key}", "required")
    _check_completion(c, bad)
    if c.steps_query and "name" not in c.step_columns:
        bad("step_columns.name", "required when steps_query is set")
    if c.content.kind == "path" and c.content.root is None:
        bad("content.root", "required for kind: path (the folder every relative path must stay in)")
    try:
        ZoneInfo(c.timezone)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        bad("timezone", f"unknown time zone {c.timezone!r}: {exc}")
    if findings:
        raise GuidangError(f"{where}: invalid configuration\n" + "\n".join(map(str, findings)), findings)


def _check_completion(c: SqlSource, bad: Callable[[str, str], None]) -> None:
    """count_query / list_query and their mappings: every field either a column of the result or,
    where the system does not hold it, a constant of the source."""
    for query, section, mapping, allowed, required in (
        ("count_query", "count_columns", c.count_columns, COUNT_FIELDS, ("count",)),
        ("list_query", "list_columns", c.list_columns, LIST_FIELDS, ("project_id", "completed_at")),
    ):
        for key in mapping:
            if key not in allowed:
                bad(f"{section}.{key}", f"unknown field {key!r}; known: {', '.join(allowed)}")
        if not getattr(c, query):
            if mapping:
                bad(section, f"given, but {query} is not")
            continue
        for key in required:
            if key not in mapping:
                bad(f"{section}.{key}", f"required with {query} (a result column)")
        for key in ("agency", "matter_type"):
            if key not in mapping and key not in c.constants:
                bad(f"{section}.{key}", f"required with {query}: a result column, or a constant under constants")


def strip_sql(sql: str) -> str:
    """Trailing `;` and blanks would break the subqueries the connector wraps around the user's SQL."""
    return sql.strip().rstrip(";").rstrip()


def statement(source: str, sql: str, what: str, *, datetimes: Sequence[str] = ()) -> TextClause:
    """`sql` as a statement; `datetimes` name the binds that carry date-times (the window bounds)."""
    try:
        stmt = text(sql)
        if datetimes:
            # Typed binds: on SQLite the value is then rendered in the same format SQLAlchemy
            # stores DateTime columns in, so the string comparison in the query is right.
            stmt = stmt.bindparams(*(bindparam(n, type_=DateTime()) for n in datetimes))
    except sa_exc.ArgumentError as exc:
        raise GuidangError(
            f"source {source}: {what} must use the parameters {', '.join(':' + d for d in datetimes)}: {exc}",
            [Finding("SQL-CONFIG-INVALID", f"source {source}: {what}", str(exc))],
        ) from exc
    return stmt


def resolve_sqlite(url: URL, base_dir: Path) -> URL:
    """A relative `sqlite:///` path is relative to guidang.yaml's folder, not to the working directory."""
    db = url.database
    if url.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith("file:"):
        path = Path(db)
        if not path.is_absolute():
            return url.set(database=str(base_dir / path))
    return url


def resolve_path(path: str, base_dir: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


class Queries:
    """The statements one source runs, all derived from its configuration.

    `quote` quotes an identifier for the source's dialect; it is called only for names that are
    not plain (it needs the engine, which a connector creates on first use).
    """

    def __init__(self, config: SqlSource, quote: Callable[[str], str]) -> None:
        self.config = config
        self._quote = quote
        self.matters_sql = strip_sql(config.matters_query)
        self.documents_sql = strip_sql(config.documents_query)
        self.window = self._statement(self.matters_sql, "matters_query", datetimes=("since", "until"))
        self.document_owner: str | None = config.document_columns.get("project_id")  # set before document_list

    def _statement(self, sql: str, what: str, *, datetimes: Sequence[str] = ()) -> TextClause:
        return statement(self.config.name, sql, what, datetimes=datetimes)

    def ident(self, name: str) -> str:
        """An identifier for the wrapping queries: bare when it is a plain name, quoted otherwise."""
        if name.replace("_", "a").isalnum() and name.isascii() and not name[0].isdigit():
            return name
        return self._quote(name)

    @property
    def _key_column(self) -> str:
        return self.ident(self.config.document_columns.get("key") or self.config.document_columns["file_name"])

    @cached_property
    def one_matter(self) -> TextClause:
        """The window query filtered on the project id (`:guidang_project_id`), for `fetch_matter`."""
        pid_col = self.ident(self.config.columns["project_id"])
        sql = f"SELECT * FROM (\n{self.matters_sql}\n) guidang_m WHERE guidang_m.{pid_col} = :guidang_project_id"
        return self._statement(sql, "matters_query", datetimes=("since", "until"))

    @cached_property
    def null_updated(self) -> TextClause | None:
        """How many rows the window query would select but for a NULL update column: they fall out
        of every window (NULL > :since is never true), so the count is all that tells they exist.

        Built from `matters_query` by turning each comparison of a column with `:since`/`:until`
        into `column IS NULL` (its other conditions, such as "办结 only", stay); None when the
        query compares no plain column with them, and the count cannot be derived."""
        sql, n = _WINDOW_BOUND.subn(r"\g<col> IS NULL", self.matters_sql)
        sql, m = _WINDOW_BOUND_REVERSED.subn(r"\g<col> IS NULL", sql)
        if n + m == 0:
            return None
        left = tuple(p for p in ("since", "until") if re.search(rf":{p}\b", sql))  # bounds not on a plain column
        return self._statement(f"SELECT count(*) AS guidang_n FROM (\n{sql}\n) guidang_null", "matters_query",
                               datetimes=left)

    @cached_property
    def unordered(self) -> TextClause | None:
        """The project id and update value of the rows of `matters_query` that no window between
        `:guidang_lo` and `:guidang_hi` selects although the update value is not NULL.

        Built like `null_updated`, with each bound comparison made true, and the window tested
        outside the user's query, where a value of another type (an INTEGER among TEXT dates on
        SQLite sorts before every date) or out of any plausible range fails the comparison."""
        sql, n = _WINDOW_BOUND.subn("1 = 1", self.matters_sql)
        sql, m = _WINDOW_BOUND_REVERSED.subn("1 = 1", sql)
        if n + m == 0:
            return None
        pid, upd = self.ident(self.config.columns["project_id"]), self.ident(self.config.columns["updated_at"])
        left = tuple(p for p in ("since", "until") if re.search(rf":{p}\b", sql))
        return self._statement(
            f"SELECT g.{pid}, g.{upd} FROM (\n{sql}\n) g WHERE g.{upd} IS NOT NULL"
            f" AND NOT (g.{upd} > :guidang_lo AND g.{upd} <= :guidang_hi)",
            "matters_query", datetimes=(*left, "guidang_lo", "guidang_hi"))

    @cached_property
    def document_list(self) -> TextClause:
        """The documents query without its BLOB column, so that listing never moves file bytes.

        Ordered by the key column here because MariaDB drops an ORDER BY inside a derived table;
        the mapping then puts the groups in 申报/过程/结果 order, so one system gives one document
        order (and one content hash) whichever database holds it.
        """
        names = dict.fromkeys(self.config.document_columns.values())
        if self.document_owner:
            names[self.document_owner] = None
        if self.config.content.kind != "blob":
            names[self.config.content.column] = None
        select = ", ".join(f"guidang_d.{self.ident(n)}" for n in names)
        return self._statement(
            f"SELECT {select} FROM (\n{self.documents_sql}\n) guidang_d ORDER BY guidang_d.{self._key_column}",
            "documents_query",
        )

    def find_owner(self, conn: Connection, params: dict[str, Any]) -> str:
        """The documents query's project-id column, remembered in `document_owner`: the one mapped
        as `document_columns.project_id`, else the matters' project-id column when the documents
        query also returns it (its columns read from a probe returning no row); "" when neither."""
        if not self.document_owner:
            probe = self._statement(f"SELECT * FROM (\n{self.documents_sql}\n) guidang_d WHERE 1 = 0",
                                    "documents_query")
            wanted = self.config.columns["project_id"].casefold()
            columns = list(conn.execute(probe, params).keys())
            self.document_owner = next((k for k in columns if k.casefold() == wanted), "")
        return self.document_owner

    @cached_property
    def steps(self) -> TextClause | None:
        if not self.config.steps_query:
            return None
        return self._statement(strip_sql(self.config.steps_query), "steps_query")

    @cached_property
    def count(self) -> TextClause | None:
        """`count_query` as written, its `:start` / `:end` typed as date-times like the window's."""
        if not self.config.count_query:
            return None
        return self._statement(strip_sql(self.config.count_query), "count_query", datetimes=("start", "end"))

    @cached_property
    def listing(self) -> TextClause | None:
        if not self.config.list_query:
            return None
        return self._statement(strip_sql(self.config.list_query), "list_query", datetimes=("start", "end"))

    @cached_property
    def ack(self) -> TextClause | None:
        if not self.config.ack_statement:
            return None
        return self._statement(strip_sql(self.config.ack_statement), "ack_statement")

    @cached_property
    def blob(self) -> tuple[TextClause, TextClause]:
        """One document's BLOB (`:guidang_key`): its length, and a slice (`:guidang_start`, `:guidang_len`)."""
        col = self.ident(self.config.content.column)
        inner = f"FROM (\n{self.documents_sql}\n) guidang_d WHERE guidang_d.{self._key_column} = :guidang_key"
        length = self._statement(f"SELECT length(guidang_d.{col}) AS guidang_n {inner}", "documents_query")
        piece = self._statement(
            f"SELECT substr(guidang_d.{col}, :guidang_start, :guidang_len) AS guidang_c {inner}", "documents_query"
        )
        return length, piece
