"""One night at a time per ledger: a lock that dies with its holder.

Two nights over one ledger would race for the same matters, 件号 and chain head; the loser fails
half-way. So a run takes this lock before it reads or writes anything of the night, and a second run
started meanwhile is refused at once (cron starts the next one tomorrow, an operator sees why now).

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
_PG_KEY = zlib.crc32(LOCK_NAME.encode())  # one advisory-lock key per database (their keys are per database)


class RunLocked(GuidangError):
    """Another run holds this ledger's run lock: this one exits at once, having done nothing."""


class RunLock:
    """The run lock of one ledger (`ledger.store.Ledger`); `acquire` or raise RunLocked, `release` once."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.dialect = ledger.engine.dialect.name
        self._file: IO[str] | None = None
        self._conn: Connection | None = None
        self.held = False

    def acquire(self, run_id: str) -> None:
        # A few short tries: a holder that has just taken the lock writes who it is right after, so
        # the refusal can name it; a run that is really in progress is still refused within seconds.
        for _ in range(REFUSE_AFTER_TRIES):
            if self._take():
                break
            time.sleep(0.2)
        else:
            raise RunLocked(self._refusal())
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
                    self._conn.execute(text(sql), {"k": _PG_KEY, "n": self._server_name()})
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
            got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_KEY}).scalar()
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
        return Path(database).with_name(Path(database).name + ".run-lock")

    def _server_name(self) -> str:
        return f"{LOCK_NAME}:{make_url(self.ledger.url).database}"[:64]

    # ------------------------------------------------------------ who holds it

    def _describe(self, run_id: str) -> None:
        """Write who holds it now (after taking it: a stale row of a killed holder is replaced)."""
        holder = f"{socket.gethostname()} pid {os.getpid()}"[:255]
        with self.ledger._write_lock, self.ledger.engine.begin() as c:
            c.execute(delete(RunLockHolder))
            c.execute(
                RunLockHolder.__table__.insert().values(id=1, run_id=run_id, holder=holder, since=datetime.now(UTC))
            )

    def _refusal(self) -> str:
        with self.ledger.engine.connect() as c:
            row = c.execute(RunLockHolder.__table__.select().where(RunLockHolder.id == 1)).first()
        if row is None:
            return "another run holds the lock since a moment ago (run not yet named); this run did nothing"
        since = row.since.replace(tzinfo=row.since.tzinfo or UTC).astimezone(UTC).isoformat(timespec="seconds")
        return (
            f"another run holds the lock since {since} (run {row.run_id}) on {row.holder}; "
            "this run did nothing: start it again when that one has finished"
        )
