"""One night at a time per source: locks that die with their holder.

Two nights over one source would race for the same matters and its watermark; the loser fails
half-way. So a run takes the lock of every source it will collect before it reads or writes
anything of the night, and a second run that wants any of them is refused at once (cron starts
the next one tomorrow, an operator sees why now). Runs over disjoint sources (one deployment per
source on a work pool) go ahead side by side: what they share, the 件号 sequences and the event
chain, is taken row by row under the database's own locks. Opening a night (migrating, importing
the first retention table) is serialised by a short `setup` lock that a second run waits for.

Why these locks and not a lease row with a heartbeat: a lease needs a clock, a heartbeat thread and
an expiry that is always either too long (a SIGKILLed night blocks the next for minutes) or too short
(a slow night loses its lock). The database's own session lock (PostgreSQL `pg_try_advisory_lock`,
MariaDB `GET_LOCK`) and, for a SQLite ledger (one machine by nature), an OS file lock (`flock`) on a
file beside it are released by the server or the kernel the moment the holding process dies, however
it dies. The `run_lock` row only says who holds it and since when, for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from guidang_io.watchdog import Alarm, watchdog
from ledger.models import RunLockHolder
from schemas.errors import InvariantBroken
from schemas.findings import GuidangError

if TYPE_CHECKING:
    from ledger.store import Ledger

log = logging.getLogger("guidang")

LOCK_NAME = "guidang-nightly-run"
REFUSE_AFTER_TRIES = 10
SETUP = "setup"  # opening a night: waited for, not refused
SETUP_WAIT_SECONDS = 120.0
CHECK_SECONDS = 60.0  # longest wait for the server's answer about the lock; then it counts as lost


def source_lock(name: str) -> str:
    """The lock name of one source."""
    return f"source:{name}"


def _key(name: str) -> int:
    """A stable 31-bit number per lock name: the advisory-lock key and the holder row's id."""
    return zlib.crc32(f"{LOCK_NAME}:{name}".encode()) & 0x7FFFFFFF


class RunLocked(GuidangError):
    """Another run holds this ledger's run lock: this one exits at once, having done nothing."""


class LockLost(GuidangError):
    """A source's run lock is no longer this run's (its database session ended: a restart, a
    failover, a terminated backend; or its lock file was replaced): the source stops at once, before
    a second night that may now hold the lock and this one work the same matters."""


def check_holder(ledger: Ledger, name: str, run_id: str) -> None:
    """For a process that works for a run without holding its locks (a worker): raise LockLost
    when the holder row of the lock `name` names another run, i.e. a second night has taken it."""
    with ledger.engine.connect() as c:
        holder = c.execute(select(RunLockHolder.run_id).where(RunLockHolder.id == _key(name))).scalar()
    if holder is not None and holder != run_id:
        what = name.removeprefix("source:")
        raise LockLost(f"the run lock of {what} is held by run {holder} now; {what} stopped at once")


class RunLock:
    """One named lock of a ledger (`ledger.store.Ledger`): a source's (`source_lock`), or `SETUP`.
    `acquire` or raise RunLocked, `check` before each commit that records work, `release` once.

    The lock lives on a connection of its own, taken out of the pool for the run: a pool that
    reconnects silently would hand back a session that no longer holds it. `check` asks the server
    whether that very session (its backend pid or connection id, noted when the lock was taken)
    still holds the lock."""

    def __init__(self, ledger: Ledger, name: str = SETUP, *, check_seconds: float = CHECK_SECONDS) -> None:
        self.ledger = ledger
        self.name = name
        self.check_seconds = check_seconds
        self.dialect = ledger.engine.dialect.name
        self._file: IO[str] | None = None
        self._conn: Connection | None = None
        self._session_id: int | None = None  # the server's id of the session that took the lock
        self._checking = threading.Lock()  # one connection, many worker threads
        self.held = False
        self.lost: str | None = None  # why the lock is known to be lost, once it is

    def acquire(self, run_id: str, *, wait_seconds: float | None = None) -> None:
        """Take the lock, or raise RunLocked naming its holder. Without `wait_seconds`, a few short
        tries: a holder that has just taken the lock writes who it is right after, so the refusal can
        name it, and a run that is really in progress is still refused within seconds."""
        deadline = time.monotonic() + (wait_seconds if wait_seconds is not None else REFUSE_AFTER_TRIES * 0.2)
        while not self._take():
            if time.monotonic() > deadline:
                raise RunLocked(self._refusal())
            time.sleep(0.2)
        self.held = True
        try:
            self._describe(run_id)
        except Exception:
            self.release()
            raise

    def is_free(self) -> bool:
        """Whether nobody holds the lock now (taken and given back at once: a probe, not a hold)."""
        if not self._take():
            return False
        self.held = True
        self.release()
        return True

    def check(self) -> None:
        """Raise LockLost unless this run still holds the lock, in the session that took it."""
        if not self.held:
            return
        if self.lost is not None:
            raise LockLost(self.lost)
        with self._checking:
            problem = self._problem()
        if problem is not None:
            what = self.name.removeprefix("source:")
            self.lost = f"the run lock of {what} was lost ({problem}); {what} stopped at once"
            raise LockLost(self.lost)

    def _problem(self) -> str | None:
        """None while the lock holds; else what happened to it."""
        if self._file is not None:  # SQLite: the locked file must still be the one at the lock's path
            path = self._sqlite_lock_path()
            try:
                same = path is not None and os.stat(path).st_ino == os.fstat(self._file.fileno()).st_ino
            except OSError as exc:
                return f"its lock file is gone: {exc.strerror}"
            return None if same else "its lock file was replaced"
        if self._conn is None:
            return None  # an in-memory ledger: nothing else can take it
        alarm: Alarm | None = None
        try:
            with self._bounded() as alarm:
                row = self._ask()
        except SQLAlchemyError as exc:
            if alarm is not None and alarm.fired:
                return f"the database did not answer about it within {self.check_seconds:g} s: its connection is cut"
            return f"the database session that held it ended: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        if row[0] != self._session_id:
            return f"the database session that held it ended (session {self._session_id}, now {row[0]})"
        return None if row[1] else "the database no longer shows it held"

    def _ask(self) -> Any:
        """The lock's session id and whether it holds the lock, as the server says."""
        if self._conn is None:
            raise InvariantBroken(f"run lock {self.name}: asked about without its connection")
        if self.dialect == "postgresql":
            return self._conn.execute(text(
                "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid() AND granted AND classid = 0 AND objid = :k AND objsubid = 1)"
            ), {"k": _key(self.name)}).one()
        return self._conn.execute(text("SELECT CONNECTION_ID(), IS_USED_LOCK(:n) = CONNECTION_ID()"),
                                  {"n": self._server_name()}).one()

    @contextlib.contextmanager
    def _bounded(self) -> Iterator[Alarm | None]:
        """The block's exchange with the server on the lock's connection ends within check_seconds.

        A connection cut off without a word (a firewall dropping its packets, a proxy that stops
        forwarding) leaves the driver waiting for an answer for ever, and with it the whole night:
        no timeout of the drivers bounds a wait for a query's answer. So an alarm shuts the
        connection's socket down when the time is up; the driver fails at once, and the caller,
        seeing the alarm `fired`, says why."""
        sock = self._socket()
        alarm = watchdog().arm(self.check_seconds, sock.shutdown_both) if sock is not None else None
        try:
            yield alarm
        finally:
            if alarm is not None:
                alarm.disarm()
            if sock is not None:
                sock.close()

    def _socket(self) -> _DupSocket | None:
        """A second handle on the lock connection's socket, to shut it down from the watchdog."""
        if self._conn is None:
            return None
        raw = self._conn.connection.dbapi_connection
        if getattr(raw, "closed", 0):  # psycopg2's own word that its connection is gone: nothing to wait for
            return None
        fileno = getattr(raw, "fileno", None)  # psycopg2
        sock = getattr(raw, "_sock", None)  # pymysql
        fd = fileno() if callable(fileno) else sock.fileno() if isinstance(sock, socket.socket) else None
        return _DupSocket(fd) if fd is not None and fd >= 0 else None

    def release(self) -> None:
        """Give the lock back (also what the server or kernel does when the holder dies). A lock
        already lost is not given back: its session is gone, and the server released it then."""
        if self._conn is not None:
            try:
                if self.held and self.lost is None:
                    sql = "SELECT pg_advisory_unlock(:k)" if self.dialect == "postgresql" else "SELECT RELEASE_LOCK(:n)"
                    with self._bounded():
                        self._conn.execute(text(sql), {"k": _key(self.name), "n": self._server_name()})
            except SQLAlchemyError as exc:  # the session died after the last check: nothing to give back
                log.warning("run lock of %s: its session had ended before it was released (%s)",
                            self.name, exc.__class__.__name__)
            finally:
                with contextlib.suppress(SQLAlchemyError):
                    self._conn.close()
                self._conn = None
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
        self.held = False

    # ------------------------------------------------------------ the lock itself

    def _take(self) -> bool:
        if self.dialect == "sqlite":
            path = self._sqlite_lock_path()
            if path is None:  # an in-memory ledger: no other process can share it
                return True
            self._file = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the run
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.close()
                self._file = None
                return False
            return True
        self._conn = self.ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if self.dialect == "postgresql":
            got, self._session_id = self._conn.execute(text("SELECT pg_try_advisory_lock(:k), pg_backend_pid()"),
                                                       {"k": _key(self.name)}).one()
        else:  # mysql / mariadb: a named lock, server-wide, so the name carries the database
            got, self._session_id = self._conn.execute(text("SELECT GET_LOCK(:n, 0), CONNECTION_ID()"),
                                                       {"n": self._server_name()}).one()
        if not got:
            self._conn.close()
            self._conn = None
        return bool(got)

    def _sqlite_lock_path(self) -> Path | None:
        database = make_url(self.ledger.url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database).with_name(f"{Path(database).name}.lock-{_key(self.name):08x}")

    def _server_name(self) -> str:
        """MariaDB's lock names are server-wide and at most 64 characters: database and lock, hashed."""
        database = make_url(self.ledger.url).database or ""
        return f"{LOCK_NAME}:{zlib.crc32(database.encode()):08x}:{_key(self.name):08x}"

    # ------------------------------------------------------------ who holds it

    def _describe(self, run_id: str) -> None:
        """Write who holds it now (after taking it: a stale row of a killed holder is replaced)."""
        holder = f"{socket.gethostname()} pid {os.getpid()}"[:255]
        with self.ledger._write_lock, self.ledger.engine.begin() as c:
            c.execute(delete(RunLockHolder).where(RunLockHolder.id == _key(self.name)))
            c.execute(RunLockHolder.__table__.insert().values(
                id=_key(self.name), run_id=run_id, holder=holder, since=datetime.now(UTC)))

    def _refusal(self) -> str:
        with self.ledger.engine.connect() as c:
            row = c.execute(RunLockHolder.__table__.select().where(RunLockHolder.id == _key(self.name))).first()
        what = f"the lock of {self.name.removeprefix('source:')}" if self.name != SETUP else "the setup lock"
        if row is None:
            return f"another run holds {what} since a moment ago (run not yet named); this run did nothing"
        since = row.since.replace(tzinfo=row.since.tzinfo or UTC).astimezone(UTC).isoformat(timespec="seconds")
        return (
            f"another run holds {what} since {since} (run {row.run_id}) on {row.holder}; "
            "this run did nothing: start it again when that one has finished"
        )


class _DupSocket:
    """A second descriptor of a driver's socket: shutting it down ends the driver's wait too (they
    share the connection), closing it leaves the driver's own descriptor open."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=os.dup(fd))

    def shutdown_both(self) -> None:
        self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._sock.close()
