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

import fcntl
import os
import socket
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlalchemy import Connection, delete, text
from sqlalchemy.engine import make_url

from ledger.models import RunLockHolder
from schemas.findings import GuidangError

if TYPE_CHECKING:
    from ledger.store import Ledger

LOCK_NAME = "guidang-nightly-run"
REFUSE_AFTER_TRIES = 10
SETUP = "setup"  # opening a night: waited for, not refused
SETUP_WAIT_SECONDS = 120.0


def source_lock(name: str) -> str:
    """The lock name of one source."""
    return f"source:{name}"


def _key(name: str) -> int:
    """A stable 31-bit number per lock name: the advisory-lock key and the holder row's id."""
    return zlib.crc32(f"{LOCK_NAME}:{name}".encode()) & 0x7FFFFFFF


class RunLocked(GuidangError):
    """Another run holds this ledger's run lock: this one exits at once, having done nothing."""


class RunLock:
    """One named lock of a ledger (`ledger.store.Ledger`): a source's (`source_lock`), or `SETUP`.
    `acquire` or raise RunLocked, `release` once."""

    def __init__(self, ledger: Ledger, name: str = SETUP) -> None:
        self.ledger = ledger
        self.name = name
        self.dialect = ledger.engine.dialect.name
        self._file: IO[str] | None = None
        self._conn: Connection | None = None
        self.held = False

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

    def release(self) -> None:
        """Give the lock back (also what the server or kernel does when the holder dies)."""
        if self._conn is not None:
            try:
                if self.held:
                    sql = "SELECT pg_advisory_unlock(:k)" if self.dialect == "postgresql" else "SELECT RELEASE_LOCK(:n)"
                    self._conn.execute(text(sql), {"k": _key(self.name), "n": self._server_name()})
            finally:
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
            got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(self.name)}).scalar()
        else:  # mysql / mariadb: a named lock, server-wide, so the name carries the database
            got = self._conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": self._server_name()}).scalar()
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
