"""Self-built systems (自建系统) read through SQLAlchemy, described only by `SqlSource` configuration.

Adding a department's system means writing its queries and a column mapping in guidang.yaml; there
is no per-system Python. The connector therefore trusts nothing about the database but what the
configuration says, and derives every query it needs from the three the user wrote
(`sql_queries`); rows become matters by the mapping alone (`sql_mapping`). This module holds the
connector itself: database access with retries (each statement bounded: `sql_engine`), and the
three ways to a document's bytes.

A BLOB is read in `substr()` slices, which is what keeps a large one out of memory: neither
psycopg2, PyMySQL nor the sqlite3 module can stream a BLOB selected by an arbitrary query
(sqlite3's `blobopen` needs a table and rowid), so the connector holds one slice (`chunk_size`,
1 MiB) at a time; the database re-reads the value for every slice, which is the price of staying
generic. A document by URL goes through the streamer the unified system uses
(`connectors.sources.http`), so a transfer cut short resumes where it broke off.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.sql.elements import TextClause

from connectors.retry import Backoff, Deadline, with_retries
from connectors.sources.http import stream_document
from connectors.sources.http_deadline import deadline_client
from connectors.sources.http_direct import trust_context
from connectors.sources.reads import open_under, read_blocks, timed
from connectors.sources.sql_completion import counts_from_rows, items_from_rows, not_configured
from connectors.sources.sql_engine import is_transient, make_engine, timed_out
from connectors.sources.sql_mapping import MatterMapping, Rows
from connectors.sources.sql_queries import ALL_TIME, Queries, check_config, resolve_path, resolve_sqlite
from connectors.sources.sql_values import BadValue, raw_text
from schemas.completion import CompletedCount, CompletedItem
from schemas.config import SqlSource
from schemas.errors import DocumentUnavailable, InvariantBroken, SourceUnavailable
from schemas.findings import Finding, GuidangError
from schemas.model import Document, InvalidMatter, Matter

T = TypeVar("T")

log = logging.getLogger("guidang")


class SqlConnector:
    """A `SourceConnector` over one self-built system's database.

    `base_dir` is the folder of guidang.yaml: a relative `sqlite:///` URL and `content.root` are
    resolved against it, so a world folder can be moved as a whole. The engine (and, for URL
    documents, the HTTP client) is created on first use (constructing a connector never touches
    the network) and disposed by `close()`.
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
        self._backoff = Backoff(retries + 1, backoff_seconds)
        self._deadline = Deadline(config.call_deadline_seconds, config.deadline_seconds_per_mb)
        self._url: URL = resolve_sqlite(make_url(config.url), self.base_dir)
        self._safe_url = self._url.render_as_string(hide_password=True)
        self._engine: Engine | None = None
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        check_config(config)
        self.tz = ZoneInfo(config.timezone)
        self._mapping = MatterMapping(config, self.tz)
        self._queries = Queries(config, self._quote)
        self.null_updated: int | None = None  # rows with a NULL update column at the last collect
        self.unordered: list[str] | None = None  # rows no window reaches (update value of another type or range)
        self.unlisted: list[str] = []  # list_query rows that could not be listed, named, at the last listing

    # ----------------------------------------------------------------- SourceConnector protocol

    def completed_between(self, since: datetime, until: datetime) -> Iterator[Matter | InvalidMatter]:
        """Matters whose updated_at lies in (since, until], oldest first.

        The window's rows are read in one short query (they are small); each matter's documents and
        steps are then read on a connection of their own, so a slow consumer never pins a
        connection for the whole night.
        """
        params = {"since": self._mapping.source_time(since), "until": self._mapping.source_time(until)}
        window = self._queries.window
        keys, rows = self._run(lambda c: _fetch(c, window, params), "matters_query")
        self.count_null_updated(params)
        self.find_unordered(until)
        yield from self._build_all(keys, rows)

    def count_null_updated(self, params: dict[str, Any]) -> int | None:
        """Count (and warn about) the rows no window will ever collect because their update column
        is NULL; kept in `null_updated` for the run summary. None when it cannot be counted."""
        stmt = self._queries.null_updated
        if stmt is None:
            self.null_updated = None
            return None
        used = {k: v for k, v in params.items() if k in stmt.compile().params}
        n = int(self._run(lambda c: c.execute(stmt, used).scalar() or 0, "matters_query (NULL update column)"))
        self.null_updated = n
        if n:
            log.warning("source %s: %d row(s) with a NULL %s (the update column) are never collected; "
                        "set it at the source to have them archived", self.name, n, self.update_column)
        return n

    def find_unordered(self, until: datetime) -> list[str] | None:
        """Name (and warn about) the rows no window will ever collect although their update column
        holds a value: another type among the column's (an INTEGER among TEXT dates sorts before
        every date on SQLite), a date before 1900 or more than a day ahead. Kept in `unordered`
        for the run summary; None when the matters query does not allow the check."""
        if (stmt := self._queries.unordered) is None:
            self.unordered = None
            return None
        now = self._mapping.source_time(datetime.now(self.tz))  # a backfill's until lies in the past
        latest = max(self._mapping.source_time(until), now) + timedelta(days=1)
        params = {"guidang_lo": ALL_TIME[0], "guidang_hi": latest,
                  "since": ALL_TIME[0], "until": ALL_TIME[1]}
        used = {k: v for k, v in params.items() if k in stmt.compile().params}
        found = self._run(lambda c: c.execute(stmt, used).fetchall(), "matters_query (unordered update values)")
        self.unordered = [self._mapping.describe(pid, upd) for pid, upd in found]
        if self.unordered:
            log.warning("source %s: %d row(s) are never collected: their %s cannot be ordered among the "
                        "window's dates: %s", self.name, len(self.unordered), self.update_column,
                        "; ".join(self.unordered[:20]))
        return self.unordered

    def rows_without_id(self, updated_at: datetime) -> list[InvalidMatter]:
        """Rows without a project id updated at `updated_at`: how a quarantined one is found again."""
        until = self._mapping.source_time(updated_at)
        params = {"since": until - timedelta(seconds=1), "until": until}
        keys, rows = self._run(lambda c: _fetch(c, self._queries.window, params), "matters_query")
        cols, prepared = self._mapping.prepare(keys, rows)
        return [self._mapping.without_id(n, upd, row, cols) for upd, n, pid, row in prepared if pid is None]

    @property
    def update_column(self) -> str:
        return self.config.columns["updated_at"]

    def fetch_matter(self, project_id: str) -> Matter | InvalidMatter | None:
        stmt = self._queries.one_matter
        params = {"since": ALL_TIME[0], "until": ALL_TIME[1], "guidang_project_id": project_id}
        keys, rows = self._run(lambda c: _fetch(c, stmt, params), "matters_query")
        if not rows:
            return None
        return next(self._build_all(keys, rows[:1]))

    def open_document(self, document: Document) -> Iterator[bytes]:
        """A BLOB or file that is not there (NULL or empty BLOB, missing file, a path leaving
        `content.root`) raises DocumentUnavailable from this call already; a URL is only asked
        for when the bytes are read, so its HTTP 404 raises from the iteration, as does any fault
        while the bytes flow."""
        kind = self.config.content.kind
        if kind == "blob":
            return self._stream_blob(document)
        if kind == "path":
            return self._stream_path(document)
        return self._stream_url(document)

    def acknowledge(self, project_id: str, archival_code: str) -> None:
        """Run `ack_statement` in its own transaction; the statement should be idempotent, since a
        re-run after a crash between verification and the ledger commit acknowledges again."""
        stmt = self._queries.ack
        if stmt is None:
            return
        params = {"project_id": project_id, "archival_code": archival_code}
        self._run(lambda c: c.execute(stmt, params), "ack_statement", transaction=True)

    # ----------------------------------------------------------------- 应归尽归: the source's own count

    def count_completed(self, start: datetime, end: datetime) -> list[CompletedCount]:
        """Matters whose 办结时间 lies in [start, end), counted by `count_query` (the bounds given
        as the source's naive local time); GuidangError naming the key when it is not configured."""
        stmt = self._queries.count
        if stmt is None:
            raise not_configured(self.config, "count_query", "count")
        keys, rows = self._run(lambda c: _fetch(c, stmt, self._completion_params(start, end)), "count_query")
        return counts_from_rows(self.config, self._mapping, keys, rows)

    def list_completed(self, start: datetime, end: datetime) -> Iterator[CompletedItem] | None:
        """The same matters one by one, by `list_query` (read at once: one small row each); None
        when the source has no list_query."""
        stmt = self._queries.listing
        if stmt is None:
            return None
        keys, rows = self._run(lambda c: _fetch(c, stmt, self._completion_params(start, end)), "list_query")
        items, self.unlisted = items_from_rows(self.config, self._mapping, keys, rows)
        for problem in self.unlisted:
            log.warning("%s", problem)
        return iter(items)

    def _completion_params(self, start: datetime, end: datetime) -> dict[str, datetime]:
        return {"start": self._mapping.source_time(start), "end": self._mapping.source_time(end)}

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            if self._http is not None:
                self._http.close()
                self._http = None

    def __enter__(self) -> SqlConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- database access

    def _get_engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = make_engine(self._url, source=self.name,
                                           statement_timeout=self.config.statement_timeout_seconds)
                raw_text(self._engine)
            return self._engine

    def _quote(self, name: str) -> str:
        return self._get_engine().dialect.identifier_preparer.quote_identifier(name)

    def _run(self, fn: Callable[[Connection], T], what: str, *, transaction: bool = False) -> T:
        """Run `fn` on a fresh connection, retrying transient faults with exponential backoff; any
        other database error is the query's (or the configuration's) and raised at once."""

        def attempt() -> T:
            engine = self._get_engine()
            try:
                with engine.begin() if transaction else engine.connect() as conn:
                    return fn(conn)
            except sa_exc.DBAPIError as exc:
                if is_transient(exc, self._url.get_backend_name()):
                    raise
                message = self._message(exc)
                raise GuidangError(
                    f"source {self.name}: {what} failed on {self._safe_url}: {message}",
                    [Finding("SQL-QUERY-FAILED", f"source {self.name}: {what}", message)],
                ) from exc

        def transient(exc: Exception) -> str | None:
            if not isinstance(exc, sa_exc.DBAPIError):
                return None
            if timed_out(exc, self._url.get_backend_name()):
                return (f"the statement ran longer than statement_timeout_seconds "
                        f"({self.config.statement_timeout_seconds:g} s): {self._message(exc)}")
            return f"{type(exc.orig or exc).__name__}: {self._message(exc)}"

        def give_up(reason: str, _exc: Exception) -> SourceUnavailable:
            return SourceUnavailable(f"source {self.name}: database {self._safe_url} unavailable after "
                                     f"{self._backoff.attempts} attempts ({what}): {reason}")

        return with_retries(attempt, self._backoff, what=f"source {self.name}: {what} on {self._safe_url}",
                            transient=transient, give_up=give_up)

    def _message(self, exc: sa_exc.DBAPIError) -> str:
        """The driver's message; drivers do not print passwords today, this keeps it so if one starts to."""
        message = str(exc.orig) if exc.orig is not None else str(exc)
        password = self._url.password
        if password:
            message = message.replace(str(password), "***")
        return message

    def _build_all(self, keys: Sequence[str], rows: list[dict[str, Any]]) -> Iterator[Matter | InvalidMatter]:
        cols, prepared = self._mapping.prepare(keys, rows)
        for updated, n, pid, row in prepared:
            if pid is None:
                yield self._mapping.without_id(n, updated, row, cols)
                continue
            try:
                docs, steps = self._run(lambda c, p=pid: self._details(c, p), f"documents/steps of {pid}")
            except (UnicodeError, BadValue) as exc:  # a driver that decodes anyway, a value it cannot send
                yield self._mapping.unreadable_details(pid, updated, row, cols, str(exc))
                continue
            except GuidangError as exc:  # the database refused this matter's id (e.g. not an integer)
                if not isinstance(exc.__cause__, sa_exc.DataError):
                    raise
                yield self._mapping.unreadable_details(pid, updated, row, cols, str(exc))
                continue
            yield self._mapping.build(pid, updated, row, cols, docs, steps)

    def _details(self, conn: Connection, project_id: str) -> tuple[Rows, Rows | None]:
        params = {"project_id": project_id}
        if self._mapping.document_owner is None:
            self._mapping.document_owner = self._queries.find_owner(conn, params)
        docs = _fetch(conn, self._queries.document_list, params)
        steps_stmt = self._queries.steps
        steps = _fetch(conn, steps_stmt, params) if steps_stmt is not None else None
        return docs, steps

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
        length_stmt, slice_stmt = self._queries.blob
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
        return timed(self._blob_slices(slice_stmt, params, int(total), where), self.config.read_timeout_seconds, where)

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
        if self.config.content.root is None:  # check_config refuses a path content without a root
            raise InvariantBroken(f"source {self.config.name}: path content without a root")
        root = resolve_path(self.config.content.root, self.base_dir)
        pid, rel = self._locate(document, "path")
        where = f"source {self.name}: project {pid}: document {document.file_name!r} (path {rel!r})"
        handle = open_under(root, str(rel), where, self.config.read_timeout_seconds)
        return timed(read_blocks(handle, self.chunk_size), self.config.read_timeout_seconds, where)

    def _stream_url(self, document: Document) -> Iterator[bytes]:
        pid, url = self._locate(document, "url")
        where = f"source {self.name}: project {pid}: document {document.file_name!r}"
        chunks = stream_document(self._http_client(), url, where=where, backoff=self._backoff,
                                 timeout=self.http_timeout_seconds, deadline=self._deadline)
        return timed(chunks, self.config.read_timeout_seconds, where)

    def _http_client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = deadline_client(timeout=self.http_timeout_seconds, follow_redirects=True,
                                             verify=trust_context())
            return self._http


def _fetch(conn: Connection, stmt: TextClause, params: dict[str, Any]) -> Rows:
    result = conn.execute(stmt, params)
    keys = list(result.keys())
    return keys, [dict(r) for r in result.mappings()]
