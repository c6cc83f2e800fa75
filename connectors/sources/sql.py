"""Self-built systems (自建系统) read through SQLAlchemy, described only by `SqlSource` configuration.

Adding a department's system means writing its queries and a column mapping in guidang.yaml; there
is no per-system Python. The connector therefore trusts nothing about the database but what the
configuration says, and derives every query it needs from the three the user wrote:

- the window query (`matters_query`, `:since` / `:until`) is also wrapped as a subquery filtered on
  the project-id column, which is how `fetch_matter` finds one matter for a quarantine retry;
- the documents query (`documents_query`, `:project_id`) is wrapped to list documents *without* the
  BLOB column, and wrapped again to read one document's BLOB in `substr()` slices. The slices are
  what keeps a large BLOB out of memory: neither psycopg2, PyMySQL nor the sqlite3 module can
  stream a BLOB selected by an arbitrary query (sqlite3's `blobopen` needs a table and rowid), so
  the connector holds one slice (`chunk_size`, 1 MiB) at a time; the database re-reads the value
  for every slice, which is the price of staying generic.

Identifiers are matched case-insensitively because PostgreSQL folds unquoted names to lower case
while SQLite and MariaDB keep them as written: one configuration serves the same tables in all three.
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
from pydantic import ValidationError
from sqlalchemy import DateTime, Engine, bindparam, create_engine, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql.elements import TextClause

from schemas.config import SqlSource
from schemas.errors import DocumentUnavailable, SourceUnavailable
from schemas.findings import Finding, GuidangError
from schemas.layout import is_dangerous_path
from schemas.model import (
    Applicant,
    Document,
    DocumentGroup,
    InvalidMatter,
    Matter,
    Problem,
    ProcessStep,
    mask_id,
    mask_text,
)

T = TypeVar("T")

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
MATTER_DATETIMES = frozenset({"decided_at", "received_at", "completed_at", "updated_at"})
# `key` identifies one document within its matter for reading the BLOB; file_name when absent.
DOCUMENT_FIELDS: tuple[str, ...] = (
    "key", "group", "title", "file_name", "media_type", "size", "source_sha256", "source_sm3",
)
STEP_FIELDS: tuple[str, ...] = ("name", "actor", "department", "opinion", "started_at", "ended_at")
STEP_DATETIMES = frozenset({"started_at", "ended_at"})

# fetch_matter's window: wide enough for any record, narrow enough for MySQL DATETIME's range.
_ALL_TIME = (datetime(1900, 1, 1), datetime(9999, 12, 31, 23, 59, 59))
_DATETIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d%H%M%S", "%Y/%m/%d", "%Y%m%d")
# MySQL client/server error numbers that mean "try again" rather than "your SQL is wrong".
_MYSQL_TRANSIENT = frozenset({1040, 1053, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055})


class SqlConnector:
    """A `SourceConnector` over one self-built system's database.

    `base_dir` is the folder of guidang.yaml: a relative `sqlite:///` URL and `content.root` are
    resolved against it, so a world folder can be moved as a whole. The engine is created on first
    use (constructing a connector never touches the network) and disposed by `close()`.
    """

    def __init__(
        self,
        config: SqlSource,
        *,
        base_dir: Path,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        chunk_size: int = 1024 * 1024,
        http_timeout_seconds: float = 30.0,
    ) -> None:
        self.config = config
        self.name = config.name
        self.base_dir = Path(base_dir)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.chunk_size = chunk_size
        self.http_timeout_seconds = http_timeout_seconds
        self.tz = ZoneInfo(config.timezone)
        self._url: URL = _resolve_sqlite(make_url(config.url), self.base_dir)
        self._safe_url = self._url.render_as_string(hide_password=True)
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._check_config()
        self._matters_sql = _strip_sql(config.matters_query)
        self._documents_sql = _strip_sql(config.documents_query)
        self._window = self._text(self._matters_sql, "matters_query", datetimes=("since", "until"))

    # ----------------------------------------------------------------- SourceConnector protocol

    def completed_between(self, since: datetime, until: datetime) -> Iterator[Matter | InvalidMatter]:
        """Matters whose updated_at lies in (since, until], oldest first.

        The window's rows are read in one short query (they are small); each matter's documents and
        steps are then read on a connection of their own, so a slow consumer never pins a
        connection for the whole night.
        """
        params = {"since": self._source_time(since), "until": self._source_time(until)}
        keys, rows = self._run(lambda c: _fetch(c, self._window, params), "matters_query")
        yield from self._build_all(keys, rows)

    def fetch_matter(self, project_id: str) -> Matter | InvalidMatter | None:
        pid_col = self._ident(self.config.columns["project_id"])
        sql = f"SELECT * FROM (\n{self._matters_sql}\n) guidang_m WHERE guidang_m.{pid_col} = :guidang_project_id"
        stmt = self._text(sql, "matters_query", datetimes=("since", "until"))
        params = {"since": _ALL_TIME[0], "until": _ALL_TIME[1], "guidang_project_id": project_id}
        keys, rows = self._run(lambda c: _fetch(c, stmt, params), "matters_query")
        if not rows:
            return None
        return next(self._build_all(keys, rows[:1]))

    def open_document(self, document: Document) -> Iterator[bytes]:
        """A document that is not there (NULL or empty BLOB, missing file, HTTP 404, a path leaving
        `content.root`) raises DocumentUnavailable from this call already; a fault while the bytes
        flow raises from the iteration."""
        kind = self.config.content.kind
        if kind == "blob":
            return self._stream_blob(document)
        if kind == "path":
            return self._stream_path(document)
        return self._stream_url(document)

    def acknowledge(self, project_id: str, archival_code: str) -> None:
        """Run `ack_statement` in its own transaction; the statement should be idempotent, since a
        re-run after a crash between verification and the ledger commit acknowledges again."""
        if not self.config.ack_statement:
            return
        stmt = self._text(_strip_sql(self.config.ack_statement), "ack_statement")
        params = {"project_id": project_id, "archival_code": archival_code}

        self._run(lambda c: c.execute(stmt, params), "ack_statement", transaction=True)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def __enter__(self) -> SqlConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- configuration

    def _check_config(self) -> None:
        """Mistakes in the mapping are the operator's, not a matter's: refuse them before any query."""
        c = self.config
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
        for key in ("project_id", "updated_at"):
            if key not in c.columns:
                bad(f"columns.{key}", "must come from a column (it identifies the record / drives the watermark)")
        for key in ("group", "file_name"):
            if key not in c.document_columns:
                bad(f"document_columns.{key}", "required")
        if c.steps_query and "name" not in c.step_columns:
            bad("step_columns.name", "required when steps_query is set")
        if c.content.kind == "path" and c.content.root is None:
            bad("content.root", "required for kind: path (the folder every relative path must stay in)")
        for value in c.group_values.values():
            try:
                DocumentGroup.parse(value)
            except ValueError as exc:
                bad("group_values", str(exc))
        try:
            ZoneInfo(c.timezone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError
            bad("timezone", f"unknown time zone {c.timezone!r}: {exc}")
        if findings:
            raise GuidangError(f"{where}: invalid configuration\n" + "\n".join(map(str, findings)), findings)

    def _text(self, sql: str, what: str, *, datetimes: Sequence[str] = ()) -> TextClause:
        try:
            stmt = text(sql)
            if datetimes:
                # Typed binds: on SQLite the value is then rendered in the same format SQLAlchemy
                # stores DateTime columns in, so the string comparison in the query is right.
                stmt = stmt.bindparams(*(bindparam(n, type_=DateTime()) for n in datetimes))
        except sa_exc.ArgumentError as exc:
            raise GuidangError(
                f"source {self.name}: {what} must use the parameters {', '.join(':' + d for d in datetimes)}: {exc}",
                [Finding("SQL-CONFIG-INVALID", f"source {self.name}: {what}", str(exc))],
            ) from exc
        return stmt

    def _ident(self, name: str) -> str:
        """An identifier for the wrapping queries: bare when it is a plain name (so that PostgreSQL
        folds it the same way it folded the user's query), quoted otherwise."""
        if name.replace("_", "a").isalnum() and name.isascii() and not name[0].isdigit():
            return name
        return self._get_engine().dialect.identifier_preparer.quote_identifier(name)

    # ----------------------------------------------------------------- database access

    def _get_engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                if self._url.get_backend_name() == "sqlite":
                    db = self._url.database
                    if db and db != ":memory:" and not db.startswith("file:") and not Path(db).is_file():
                        # sqlite3 would silently create an empty database and report "no such table".
                        raise SourceUnavailable(f"source {self.name}: database file not found: {db}")
                connect_args: dict[str, Any] = {}
                if self._url.get_backend_name() in ("postgresql", "mysql", "mariadb"):
                    connect_args["connect_timeout"] = 10
                self._engine = create_engine(self._url, pool_pre_ping=True, connect_args=connect_args)
            return self._engine

    def _run(self, fn: Callable[[Connection], T], what: str, *, transaction: bool = False) -> T:
        """Run `fn` on a fresh connection, retrying transient faults with exponential backoff."""
        attempt = 0
        while True:
            try:
                engine = self._get_engine()
                with engine.begin() if transaction else engine.connect() as conn:
                    return fn(conn)
            except sa_exc.DBAPIError as exc:
                message = self._scrub(str(exc.orig) if exc.orig is not None else str(exc))
                if not self._transient(exc):
                    raise GuidangError(
                        f"source {self.name}: {what} failed on {self._safe_url}: {message}",
                        [Finding("SQL-QUERY-FAILED", f"source {self.name}: {what}", message)],
                    ) from exc
                if attempt >= self.retries:
                    raise SourceUnavailable(
                        f"source {self.name}: database {self._safe_url} unavailable after "
                        f"{attempt + 1} attempts ({what}): {type(exc.orig or exc).__name__}: {message}"
                    ) from exc
            time.sleep(self.backoff_seconds * (2**attempt))
            attempt += 1

    def _transient(self, exc: sa_exc.DBAPIError) -> bool:
        if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError):
            return True
        if not isinstance(exc, sa_exc.OperationalError):
            return False
        backend = self._url.get_backend_name()
        if backend == "sqlite":
            msg = str(exc.orig).lower()
            return any(s in msg for s in ("locked", "busy", "unable to open", "disk i/o"))
        if backend in ("mysql", "mariadb"):
            args = getattr(exc.orig, "args", ())
            code = args[0] if args and isinstance(args[0], int) else 0
            return code in _MYSQL_TRANSIENT or code >= 2000
        return True

    def _scrub(self, message: str) -> str:
        """Drivers do not print passwords today; this keeps it so if one starts to."""
        password = self._url.password
        if password:
            message = message.replace(str(password), "***")
        return message

    def _source_time(self, value: datetime) -> datetime:
        """The window bound as the source's naive local time (aware input is converted)."""
        if value.tzinfo is None:
            return value
        return value.astimezone(self.tz).replace(tzinfo=None)

    # ----------------------------------------------------------------- building matters

    def _build_all(self, keys: Sequence[str], rows: list[dict[str, Any]]) -> Iterator[Matter | InvalidMatter]:
        cols = self._resolve_columns(keys, self.config.columns, "matters_query")
        prepared = []
        for n, row in enumerate(rows, 1):
            try:
                updated = self._datetime(row[cols["updated_at"]])
            except ValueError:
                updated = None
            prepared.append((updated, n, _text_value(row[cols["project_id"]]), row))
        # Oldest first even if the query forgot its ORDER BY; unparseable times go first so that
        # they reach quarantine rather than hold a watermark back.
        prepared.sort(key=lambda t: (t[0] is not None, t[0] or datetime.min.replace(tzinfo=self.tz), t[1]))
        for updated, n, pid, row in prepared:
            if pid is None:
                column = self.config.columns["project_id"]
                yield self._invalid(f"(row {n})", updated, row, cols, [f"field project_id (column {column}): missing"])
                continue
            docs, steps = self._run(lambda c, p=pid: self._details(c, p), f"documents/steps of {pid}")
            yield self._build(pid, updated, row, cols, docs, steps)

    def _details(self, conn: Connection, project_id: str) -> tuple[Any, Any]:
        params = {"project_id": project_id}
        docs = _fetch(conn, self._document_list_stmt, params)
        steps = None
        if self.config.steps_query:
            steps = _fetch(conn, self._text(_strip_sql(self.config.steps_query), "steps_query"), params)
        return docs, steps

    @cached_property
    def _document_list_stmt(self) -> TextClause:
        """The documents query without its BLOB column, so that listing never moves file bytes.

        Ordered by the key column here because MariaDB drops an ORDER BY inside a derived table;
        `_documents` then puts the groups in 申报/过程/结果 order, so one system gives one document
        order (and one content hash) whichever database holds it.
        """
        names = dict.fromkeys(self.config.document_columns.values())
        if self.config.content.kind != "blob":
            names[self.config.content.column] = None
        select = ", ".join(f"guidang_d.{self._ident(n)}" for n in names)
        key = self._ident(self.config.document_columns.get("key") or self.config.document_columns["file_name"])
        return self._text(
            f"SELECT {select} FROM (\n{self._documents_sql}\n) guidang_d ORDER BY guidang_d.{key}", "documents_query"
        )

    def _resolve_columns(self, keys: Sequence[str], mapping: Mapping[str, str], what: str) -> dict[str, str]:
        exact = set(keys)
        folded = {k.casefold(): k for k in keys}
        resolved: dict[str, str] = {}
        findings = []
        for field, column in mapping.items():
            if column in exact:
                resolved[field] = column
            elif column.casefold() in folded:
                resolved[field] = folded[column.casefold()]
            else:
                findings.append(Finding(
                    "SQL-CONFIG-COLUMN", f"source {self.name}: {what}",
                    f"field {field} is mapped to column {column!r}, which the query does not return "
                    f"(it returns: {', '.join(keys)})",
                ))
        if findings:
            raise GuidangError("\n".join(map(str, findings)), findings)
        return resolved

    def _build(
        self,
        pid: str,
        updated: datetime | None,
        row: dict[str, Any],
        cols: dict[str, str],
        docs: tuple[Sequence[str], list[dict[str, Any]]],
        steps: tuple[Sequence[str], list[dict[str, Any]]] | None,
    ) -> Matter | InvalidMatter:
        problems: list[Problem] = []
        values: dict[str, Any] = {}
        for field, constant in self.config.constants.items():
            try:
                values[field] = self._datetime(constant) if field in MATTER_DATETIMES else constant
            except ValueError as exc:
                problems.append(Problem(message=f"field {field} (constant {constant!r}): {exc}"))
        for field, key in cols.items():
            raw = row[key]
            column = self.config.columns[field]
            try:
                values[field] = self._datetime(raw) if field in MATTER_DATETIMES else _text_value(raw)
            except ValueError as exc:
                problems.append(Problem(message=f"field {field} (column {column}): {exc}"))
        unparsed = {p.message.split(" ", 2)[1] for p in problems}
        for field in REQUIRED_MATTER_FIELDS:
            if field not in unparsed and values.get(field) in (None, ""):
                origin = f"column {self.config.columns[field]}" if field in cols else "constant"
                problems.append(Problem(message=f"field {field} ({origin}): missing"))

        documents = self._documents(pid, docs, problems)
        process = self._steps(steps, problems) if steps is not None else []
        if not problems:
            applicant = {
                "name": values.pop("applicant_name"),
                "card_type": values.pop("applicant_card_type", None),
                "card_number": values.pop("applicant_card_number", None),
            }
            try:
                return Matter.model_validate({
                    **values, "source": self.name, "applicant": Applicant(**applicant),
                    "steps": process, "documents": documents,
                })
            except ValidationError as exc:
                problems.extend(self._validation_problems(exc, self.config.columns))
        return self._invalid(pid, updated, row, cols, problems)

    def _documents(
        self, pid: str, docs: tuple[Sequence[str], list[dict[str, Any]]], problems: list[Problem]
    ) -> list[Document]:
        keys, rows = docs
        mapping = dict(self.config.document_columns)
        if self.config.content.kind != "blob":
            mapping["_content"] = self.config.content.column
        cols = self._resolve_columns(keys, mapping, "documents_query")
        out: list[Document] = []
        for n, row in enumerate(rows, 1):
            values = {f: row[k] for f, k in cols.items()}
            file_name = _text_value(values.get("file_name")) or ""
            label = f"document {n} ({file_name or 'no file name'})"
            group_raw = _text_value(values.get("group")) or ""
            try:
                group = DocumentGroup.parse(self.config.group_values.get(group_raw, group_raw))
            except ValueError:
                problems.append(Problem(
                    message=f"{label}: field group (column {mapping['group']}): unknown value {group_raw!r}; "
                    f"map it under group_values (申报/过程/结果)"
                ))
                continue
            key = values.get("key", values.get("file_name"))
            if isinstance(key, Decimal):
                key = int(key) if key == key.to_integral_value() else str(key)
            elif not isinstance(key, int | str):
                key = _text_value(key)
            if self.config.content.kind == "blob":
                locator = json.dumps({"project_id": pid, "key": key}, ensure_ascii=False)
            else:
                content = _text_value(values.get("_content"))
                if not content:
                    column = self.config.content.column
                    problems.append(Problem(message=f"{label}: field content (column {column}): missing"))
                    continue
                locator = json.dumps({"project_id": pid, self.config.content.kind: content}, ensure_ascii=False)
            media_type = _text_value(values.get("media_type")) or mimetypes.guess_type(file_name)[0]
            size = values.get("size")
            try:
                out.append(Document.model_validate({
                    "group": group,
                    "title": _text_value(values.get("title")) or PurePosixPath(file_name).stem or file_name,
                    "file_name": file_name,
                    "media_type": media_type or "application/octet-stream",
                    "size": int(size) if size not in (None, "") else None,
                    "source_sha256": _text_value(values.get("source_sha256")),
                    "source_sm3": _text_value(values.get("source_sm3")),
                    "locator": locator,
                }))
            except (ValidationError, ValueError, TypeError) as exc:
                if isinstance(exc, ValidationError):
                    problems.extend(p.within(label) for p in self._validation_problems(exc, mapping))
                else:
                    problems.append(Problem(message=f"{label}: field size (column {mapping.get('size')}): {exc}"))
        order = list(DocumentGroup)
        return sorted(out, key=lambda d: order.index(d.group))

    def _steps(self, steps: tuple[Sequence[str], list[dict[str, Any]]], problems: list[Problem]) -> list[ProcessStep]:
        keys, rows = steps
        cols = self._resolve_columns(keys, self.config.step_columns, "steps_query")
        out: list[ProcessStep] = []
        for n, row in enumerate(rows, 1):
            values: dict[str, Any] = {}
            bad = False
            for field, key in cols.items():
                try:
                    values[field] = self._datetime(row[key]) if field in STEP_DATETIMES else _text_value(row[key])
                except ValueError as exc:
                    problems.append(
                        Problem(message=f"step {n}: field {field} (column {self.config.step_columns[field]}): {exc}")
                    )
                    bad = True
            if bad:
                continue
            try:
                out.append(ProcessStep.model_validate(values))
            except ValidationError as exc:
                problems.extend(p.within(f"step {n}") for p in self._validation_problems(exc, self.config.step_columns))
        return out

    def _validation_problems(self, exc: ValidationError, mapping: Mapping[str, str]) -> list[Problem]:
        out: list[Problem] = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            msg = err["msg"].removeprefix("Value error, ")
            field = loc[0] if loc else ""
            if field == "applicant" and len(loc) > 1:
                field = f"applicant_{loc[1]}"
            if not field:
                # A check across fields (dates out of order): name the columns behind the fields.
                named = [f"{f}={c}" for f, c in mapping.items() if re.search(rf"\b{f}\b", msg)]
                text = msg + (f" (columns: {', '.join(named)})" if named else "")
            elif field in mapping:
                text = f"field {field} (column {mapping[field]}): {msg}"
            elif field in self.config.constants:
                text = f"field {field} (constant {self.config.constants[field]!r}): {msg}"
            else:
                text = f"field {'.'.join(loc)}: {msg}"
            out.append(Problem.from_error(err, text))
        return out

    def _invalid(
        self, pid: str, updated: datetime | None, row: dict[str, Any], cols: dict[str, str], problems: list[Problem]
    ) -> InvalidMatter:
        card_key = cols.get("applicant_card_number")
        card = _text_value(row.get(card_key)) if card_key else None
        raw = {k: _json_value(v) for k, v in row.items()}
        if card_key and card:
            raw[card_key] = mask_id(card)

        def clean(p: str) -> str:
            p = mask_text(p)
            return p.replace(card, mask_id(card) or "") if card else p

        return InvalidMatter(
            source=self.name, project_id=pid, updated_at=updated, raw=raw,
            findings=[
                Problem(code=p.code, message=clean(f"source {self.name}, project {pid}: {p.message}")) for p in problems
            ],
        )

    def _datetime(self, value: object) -> datetime | None:
        """Naive values are the source's local time (`timezone`); SQLite hands back strings."""
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day)
        elif isinstance(value, str):
            parsed = _parse_datetime(value.strip())
        else:
            raise ValueError(f"not a date-time: {value!r}")
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=self.tz)

    # ----------------------------------------------------------------- documents

    def _locate(self, document: Document, field: str) -> tuple[str, Any]:
        try:
            loc = json.loads(document.locator)
            return str(loc["project_id"]), loc[field]
        except (ValueError, KeyError, TypeError) as exc:
            raise DocumentUnavailable(
                f"source {self.name}: document {document.file_name!r}: locator {document.locator!r} was not "
                f"made by this connector (content kind {self.config.content.kind})"
            ) from exc

    def _stream_blob(self, document: Document) -> Iterator[bytes]:
        pid, key = self._locate(document, "key")
        where = f"source {self.name}: project {pid}: document {document.file_name!r}"
        col = self._ident(self.config.content.column)
        key_col = self._ident(self.config.document_columns.get("key") or self.config.document_columns["file_name"])
        inner = f"FROM (\n{self._documents_sql}\n) guidang_d WHERE guidang_d.{key_col} = :guidang_key"
        length_stmt = self._text(f"SELECT length(guidang_d.{col}) AS guidang_n {inner}", "documents_query")
        slice_stmt = self._text(
            f"SELECT substr(guidang_d.{col}, :guidang_start, :guidang_len) AS guidang_c {inner}", "documents_query"
        )
        params: dict[str, Any] = {"project_id": pid, "guidang_key": key}
        lengths = self._run(lambda c: [r[0] for r in c.execute(length_stmt, params)], f"BLOB length of {pid}")
        if not lengths:
            raise DocumentUnavailable(f"{where}: no longer in the source (no row with key {key!r})")
        if len(lengths) > 1:
            raise DocumentUnavailable(f"{where}: {len(lengths)} rows share the key {key!r}; map a unique key column")
        total = lengths[0]
        if total is None:
            raise DocumentUnavailable(f"{where}: the BLOB (column {self.config.content.column}) is NULL")
        if int(total) == 0:
            raise DocumentUnavailable(f"{where}: the BLOB (column {self.config.content.column}) is empty")
        return self._blob_slices(slice_stmt, params, int(total), where)

    def _blob_slices(self, stmt: TextClause, params: dict[str, Any], total: int, where: str) -> Iterator[bytes]:
        start = 1  # SQL substr() counts from 1
        while start <= total:
            p = {**params, "guidang_start": start, "guidang_len": min(self.chunk_size, total - start + 1)}
            chunk = self._run(lambda c, p=p: c.execute(stmt, p).scalar(), f"BLOB slice of {where}")
            if not chunk:
                raise DocumentUnavailable(f"{where}: the BLOB ended at byte {start - 1} of {total} (changed?)")
            data = bytes(chunk)
            yield data
            start += len(data)

    def _stream_path(self, document: Document) -> Iterator[bytes]:
        assert self.config.content.root is not None  # checked in _check_config
        root = _resolve_path(self.config.content.root, self.base_dir).resolve()
        pid, rel = self._locate(document, "path")
        where = f"source {self.name}: project {pid}: document {document.file_name!r} (path {rel!r})"
        target = (root / rel).resolve()
        if is_dangerous_path(rel) or not target.is_relative_to(root):
            raise DocumentUnavailable(f"{where}: the path escapes the document root {root}; refused")
        try:
            handle = target.open("rb")
        except FileNotFoundError as exc:
            raise DocumentUnavailable(f"{where}: file not found under {root}") from exc
        except (IsADirectoryError, PermissionError, NotADirectoryError) as exc:
            raise DocumentUnavailable(f"{where}: cannot be read: {exc.strerror}") from exc
        return _read_blocks(handle, self.chunk_size)

    def _stream_url(self, document: Document) -> Iterator[bytes]:
        pid, raw_url = self._locate(document, "url")
        url = httpx.URL(raw_url)
        shown = str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)
        where = f"source {self.name}: project {pid}: document {document.file_name!r} ({shown})"
        attempt = 0
        while True:
            client = httpx.Client(timeout=self.http_timeout_seconds, follow_redirects=True)
            try:
                response = client.send(client.build_request("GET", url), stream=True)
            except httpx.HTTPError as exc:
                client.close()
                if attempt >= self.retries:
                    raise SourceUnavailable(f"{where}: {type(exc).__name__} after {attempt + 1} attempts") from exc
            else:
                if response.status_code < 300:
                    return _http_blocks(client, response, self.chunk_size, where)
                status = response.status_code
                response.close()
                client.close()
                if status < 500 and status not in (408, 429):
                    raise DocumentUnavailable(f"{where}: HTTP {status}")
                if attempt >= self.retries:
                    raise SourceUnavailable(f"{where}: HTTP {status} after {attempt + 1} attempts")
            time.sleep(self.backoff_seconds * (2**attempt))
            attempt += 1


# --------------------------------------------------------------------- helpers


def _fetch(conn: Connection, stmt: TextClause, params: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    result = conn.execute(stmt, params)
    keys = list(result.keys())
    return keys, [dict(r) for r in result.mappings()]


def _strip_sql(sql: str) -> str:
    """Trailing `;` and blanks would break the subqueries the connector wraps around the user's SQL."""
    return sql.strip().rstrip(";").rstrip()


def _resolve_sqlite(url: URL, base_dir: Path) -> URL:
    db = url.database
    if url.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith("file:"):
        path = Path(db)
        if not path.is_absolute():
            return url.set(database=str(base_dir / path))
    return url


def _resolve_path(path: str, base_dir: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


def _text_value(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace").strip() or None
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value).strip() or None


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    return str(value)


def _parse_datetime(text_value: str) -> datetime:
    try:
        return datetime.fromisoformat(text_value)
    except ValueError:
        pass
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text_value, fmt)
        except ValueError:
            continue
    raise ValueError(f"not a date-time: {text_value!r}")


def _read_blocks(handle: Any, size: int) -> Iterator[bytes]:
    with handle:
        while block := handle.read(size):
            yield block


def _http_blocks(client: httpx.Client, response: httpx.Response, size: int, where: str) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes(size)
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"{where}: transfer broke off: {type(exc).__name__}") from exc
    finally:
        response.close()
        client.close()
