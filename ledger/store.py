"""Ledger access: the engine, write transactions, and the writes the pipeline makes (the
quarantine's are in ledger/holds.py).

Functions take a Session and leave the transaction to the caller (SQLAlchemy 2.0 habit), so that
"allocate a 件号 and record it" or "mark verified and log the event" are one commit each. Every
write appends its event to the hash chain (ledger/chain.py); reads are in ledger/queries.py. On
SQLite (one writer at a time anyway) an in-process lock keeps threads from tripping over
SQLITE_BUSY.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from guidang_io.crashpoints import crashpoint
from ledger import queries
from ledger.chain import append_event, utcnow
from ledger.models import (
    Event,
    MatterRecord,
    MatterState,
    RetentionVersion,
    Run,
    RunStatus,
    Watermark,
)
from ledger.rows import matter_event
from schemas.findings import GuidangError


class LedgerError(GuidangError):
    """The ledger cannot be opened or written: the run fails (quarantine would hide the cause)."""


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


class Ledger:
    """An open ledger database. One per process; sessions are per thread (a session is not thread-safe)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self._write_lock = threading.RLock()
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            # The driver's own transaction handling does not cover DDL; hand it to SQLAlchemy (BEGIN
            # below) so that a migration killed half-way rolls back instead of leaving half a schema.
            kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False, "isolation_level": None}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
            if url.startswith("sqlite"):
                event.listen(self.engine, "connect", _sqlite_pragmas)
                event.listen(self.engine, "begin", _sqlite_begin)
            if migrate:
                upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise LedgerError(f"ledger {_safe_url(url)} cannot be opened: {exc.__class__.__name__}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: a write transaction takes the write lock when it begins (BEGIN IMMEDIATE). A deferred
        # one that reads first and writes later cannot wait for another process's writer (its snapshot
        # may be stale), so SQLite refuses it at once with "database is locked"; an immediate one
        # waits its turn under the busy timeout.
        writer = self.engine
        if url.startswith("sqlite"):
            writer = self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        self._write_sessions = sessionmaker(writer, expire_on_commit=False)
        # asked before every commit: raises when the work may no longer be recorded (a night's
        # source lock lost, ledger/runlock.py), and the transaction rolls back
        self.before_commit: Callable[[], None] | None = None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        with self._write_lock:
            try:
                with self._write_sessions.begin() as session:
                    yield session
                    if self.before_commit is not None:
                        self.before_commit()
                    crashpoint("ledger-before-commit")
            except SQLAlchemyError as exc:
                raise LedgerError(f"ledger write failed: {exc.__class__.__name__}: {exc}") from exc


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # Switching a new file to WAL needs an exclusive lock and SQLite does not run the busy handler for
    # it: a second process opening the ledger while the first converts it gets "database is locked"
    # at once. WAL is persistent, so waiting for the first to finish is all it takes.
    deadline = time.monotonic() + 60
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on an empty database).

    Two processes opening a new ledger together would both create the tables (one fails with
    "already exists" or a UniqueViolation), so the migration runs under the database's own lock:
    SQLite's write lock taken up front (BEGIN IMMEDIATE), a transaction-scoped advisory lock on
    PostgreSQL, GET_LOCK on MariaDB. The second waits, then finds the schema at head.

    A ledger already at HEAD_REVISION is left as it is without Alembic: every process that opens
    the ledger asks, and loading Alembic and its scripts to learn that nothing is to be done costs
    about 0.1 s of each night's start."""
    if _revisions(engine) == [HEAD_REVISION]:
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("ledger") / "migrations"))
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with connection.begin():
            dialect = engine.dialect.name
            if dialect == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            elif dialect in ("mysql", "mariadb"):
                connection.exec_driver_sql(f"SELECT GET_LOCK('guidang-migrate-{_MIGRATION_LOCK}', 120)")
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
            if dialect in ("mysql", "mariadb"):
                connection.exec_driver_sql(f"SELECT RELEASE_LOCK('guidang-migrate-{_MIGRATION_LOCK}')")


def _revisions(engine: Engine) -> list[str] | None:
    """The revisions alembic_version holds; None where the table is not there (a new database)."""
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]
    except SQLAlchemyError:
        return None


HEAD_REVISION = "0006_disposition"  # the newest script in ledger/migrations/versions (a test ties them)
_MIGRATION_LOCK = 7_310_2023  # any constant: the advisory-lock key of "a migration is running"


# ---------------------------------------------------------------- runs and watermarks


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def start_run(session: Session, parameters: dict[str, Any], *, run_id: str | None = None) -> Run:
    """The run's row and its `run-started` event; `run_id` when the run lock was taken in its name."""
    run = Run(
        id=run_id or new_run_id(),
        started_at=utcnow(),
        status=RunStatus.RUNNING,
        parameters=parameters,
        summary=None,
        finished_at=None,
        error=None,
    )
    session.add(run)
    append_event(session, "run-started", run_id=run.id, payload=parameters)
    return run


def finish_run(
    session: Session, run_id: str, *, status: RunStatus, summary: dict[str, Any], error: str | None = None
) -> None:
    run = session.get(Run, run_id)
    if run is None:
        raise LedgerError(f"run {run_id} is not in the ledger")
    run.status, run.summary, run.error, run.finished_at = status, summary, error, utcnow()
    append_event(session, f"run-{status}", run_id=run_id, payload={"totals": summary.get("totals"), "error": error})


def fail_run_after(session: Session, run_id: str, *, summary: dict[str, Any], error: str) -> None:
    """A run found failed after its closing event (its checkpoint not stored): the row says so, and
    an event records why, after the one that closed it."""
    run = session.get(Run, run_id)
    if run is not None:
        run.status, run.summary, run.error = RunStatus.FAILED, dict(summary), error
        append_event(session, "run-failed-after", run_id=run_id, payload={"error": error})


def set_run_summary(session: Session, run_id: str, summary: dict[str, Any]) -> None:
    """Replace the run's stored summary (a new dict, so the JSON column is seen as changed)."""
    run = session.get(Run, run_id)
    if run is not None:
        run.summary = dict(summary)


def set_watermark(session: Session, source: str, value: datetime, run_id: str | None) -> None:
    wm = session.get(Watermark, source)
    if wm is None:
        session.add(Watermark(source=source, value=value, run_id=run_id, updated_at=utcnow()))
    elif value > wm.value:
        wm.value, wm.run_id, wm.updated_at = value, run_id, utcnow()
    else:
        return
    append_event(session, "watermark-advanced", run_id=run_id, source=source, payload={"value": value.isoformat()})


# ---------------------------------------------------------------- matters


def record_numbered(session: Session, record: MatterRecord, *, run_id: str | None) -> MatterRecord:
    record_numbered_chunk(session, [record], run_id=run_id)
    return record


def record_numbered_chunk(session: Session, records: Sequence[MatterRecord], *, run_id: str | None) -> None:
    """The rows of a chunk's numbered matters and their `numbered` events, in the records' order.
    The rows go in with one flush (one multi-row INSERT where the database returns the ids), not
    one flush each: an event carries its row's id, so the rows must be written before the events."""
    session.add_all(records)
    session.flush()
    for record in records:
        _matter_event(session, "numbered", record, run_id=run_id, payload={
            "version": record.version,
            "content_hash": record.content_hash,
            "retention_period": record.retention_period,
            "retention_version": record.retention_version,
            "retention_row": record.retention_row,
            "item_number": record.item_number,
        })


def record_not_in_scope(session: Session, record: MatterRecord, *, run_id: str | None) -> MatterRecord:
    record.state = MatterState.NOT_IN_SCOPE
    return _add_matter(
        session,
        record,
        "not-in-scope",
        run_id=run_id,
        payload={
            "version": record.version,
            "retention_version": record.retention_version,
            "retention_row": record.retention_row,
        },
    )


def _add_matter(
    session: Session, record: MatterRecord, kind: str, *, run_id: str | None, payload: dict[str, Any]
) -> MatterRecord:
    session.add(record)
    session.flush()
    _matter_event(session, kind, record, run_id=run_id, payload=payload)
    return record


def _matter_event(
    session: Session, kind: str, rec: MatterRecord, *, run_id: str | None, payload: dict[str, Any]
) -> Event:
    # the row's facts and digest ride on the event (ledger/rows.py): an UPDATE behind guidang's back shows
    return matter_event(session, kind, rec, run_id=run_id, payload=payload)


def locked_matter(session: Session, matter_id: int) -> MatterRecord:
    """A matter's row, locked for this transaction's changes; LedgerError when there is none."""
    rec = session.get(MatterRecord, matter_id, with_for_update=True)
    if rec is None:
        raise LedgerError(f"matter row {matter_id} is not in the ledger")
    return rec


def mark_state(
    session: Session,
    rec: MatterRecord,
    state: MatterState,
    *,
    run_id: str | None,
    payload: dict[str, Any] | None = None,
    **fields: Any,
) -> MatterRecord:
    """`rec` is a row this session holds FOR UPDATE (`locked_matter`, or a chunk's rows in one
    query: queries.matters(..., for_update=True), which saves a SELECT per change)."""
    rec.state = state
    rec.run_id = run_id
    for name, value in fields.items():
        setattr(rec, name, value)
    _matter_event(session, str(state), rec, run_id=run_id, payload=payload or {})
    return rec


def mark_acknowledged(session: Session, rec: MatterRecord, at: datetime) -> None:
    """归档回传 reached the source: later runs stop retrying it. `rec` is a row this session loaded
    (a chunk's rows in one query, which saves a SELECT per matter)."""
    rec.acknowledged_at = at
    _matter_event(session, "acknowledged", rec, run_id=rec.run_id, payload={})


def begin_batch(session: Session, payload: dict[str, Any], *, run_id: str | None) -> Event:
    """Log a DA/T 93 batch's intent (id, fonds, time, members) before any of its files is stored, so
    that a run dying half-way leaves the next run what it needs to finish the same batch."""
    return append_event(session, "transfer-batch-begun", run_id=run_id, payload=payload)


def record_batch(
    session: Session, batch_id: str, matter_ids: Sequence[int], *, run_id: str | None, payload: dict[str, Any]
) -> None:
    """A DA/T 93 transfer batch is stored: name it on each of its matters and log it once.

    The rows are loaded `_BATCH_FLUSH` at a time in one query each (one SELECT per matter was most
    of the time a night spends after its last chunk), and flushed and forgotten in those slices:
    a night's batch may list tens of thousands, and memory stays bounded by a slice."""
    for start in range(0, len(matter_ids), _BATCH_FLUSH):
        part = matter_ids[start:start + _BATCH_FLUSH]
        rows = queries.matters(session, part)
        done = [rows[mid] for mid in part if mid in rows]
        for rec in done:
            rec.batch_id = batch_id
            _matter_event(session, "in-batch", rec, run_id=run_id, payload={"batch_id": batch_id})
        _flush_and_forget(session, done)
    append_event(session, "transfer-batch", run_id=run_id, payload=payload)


_BATCH_FLUSH = 500


def _flush_and_forget(session: Session, records: list[MatterRecord]) -> None:
    session.flush()
    for rec in records:
        session.expunge(rec)
    records.clear()


# ---------------------------------------------------------------- retention-table versions


def record_retention_version(session: Session, version: RetentionVersion) -> RetentionVersion:
    session.add(version)
    session.flush()
    append_event(
        session,
        "retention-imported",
        payload={
            "label": version.label,
            "content_hash": version.content_hash,
            "file_name": version.file_name,
            "effective_date": version.effective_date,
            "rules": version.rule_count,
            "imported_by": version.imported_by,
        },
    )
    return version
