"""A self-built system's database engine, every statement bounded, and which of its errors pass.

A source's query that runs for ever (a missing index on a grown table, a lock a department's job
holds, a view that calls something slow) would hold the night with it: each statement is given
`statement_timeout_seconds` by the database itself where it can, by the driver where it cannot:

- PostgreSQL: `statement_timeout`, a connection option (added to any `options` the URL carries);
- MariaDB: `SET SESSION max_statement_time` on every new connection (MySQL, which has no such
  variable: `max_execution_time`, which bounds its SELECTs);
- SQLite: a progress handler, armed before each statement, that interrupts it once its time is up
  (it is called between the virtual machine's steps, so a slow user function ends the statement
  as soon as it returns).

A statement stopped this way is a transient fault of the source (`timed_out`): the retries decide,
and the final error names the source and the query it was running.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from schemas.errors import SourceUnavailable

# MySQL client/server error numbers that mean "try again" rather than "your SQL is wrong".
_MYSQL_TRANSIENT = frozenset({1040, 1053, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055})
# ... and those of a statement stopped at its time limit (MariaDB max_statement_time, MySQL max_execution_time)
_MYSQL_TIMED_OUT = frozenset({1969, 3024})
_MYSQL_UNKNOWN_VARIABLE = 1193
_PG_QUERY_CANCELED = "57014"
_SQLITE_STEPS = 1_000  # virtual machine steps between two looks at the clock


def make_engine(url: URL, *, source: str, statement_timeout: float) -> Engine:
    """The engine of a source's database, each statement bounded to `statement_timeout` seconds."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        db = url.database
        if db and db != ":memory:" and not db.startswith("file:") and not Path(db).is_file():
            # sqlite3 would silently create an empty database and report "no such table".
            raise SourceUnavailable(f"source {source}: database file not found: {db}")
    connect_args: dict[str, Any] = {}
    if backend in ("postgresql", "mysql", "mariadb"):
        connect_args["connect_timeout"] = 10
    if backend == "postgresql":
        given = url.query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else given
        limit = f"-c statement_timeout={round(statement_timeout * 1000)}"
        connect_args["options"] = f"{given} {limit}" if given else limit
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if backend in ("mysql", "mariadb"):
        event.listen(engine, "connect", lambda dbapi_conn, _record: _limit_mysql(dbapi_conn, statement_timeout))
    elif backend == "sqlite":
        event.listen(engine, "before_cursor_execute", _sqlite_limit(statement_timeout))
    return engine


def _limit_mysql(dbapi_conn: Any, seconds: float) -> None:
    """MariaDB's session limit in seconds; MySQL's in milliseconds, when MariaDB's is unknown."""
    with dbapi_conn.cursor() as cursor:
        try:
            cursor.execute("SET SESSION max_statement_time = %s", (seconds,))
        except Exception as exc:  # the driver's own error type: only "unknown variable" is expected
            if _mysql_code(exc) != _MYSQL_UNKNOWN_VARIABLE:
                raise
            cursor.execute("SET SESSION max_execution_time = %s", (round(seconds * 1000),))


def _sqlite_limit(seconds: float) -> Any:
    def arm(_conn: Any, cursor: Any, *_args: Any) -> None:
        until = time.monotonic() + seconds
        cursor.connection.set_progress_handler(lambda: time.monotonic() > until, _SQLITE_STEPS)

    return arm


def _mysql_code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


def timed_out(exc: sa_exc.DBAPIError, backend: str) -> bool:
    """Whether the database stopped the statement at its time limit."""
    orig = exc.orig
    if backend == "postgresql":
        return getattr(orig, "pgcode", None) == _PG_QUERY_CANCELED
    if backend in ("mysql", "mariadb"):
        return _mysql_code(orig) in _MYSQL_TIMED_OUT if orig is not None else False
    if backend == "sqlite":
        return isinstance(exc, sa_exc.OperationalError) and "interrupted" in str(orig).lower()
    return False


def is_transient(exc: sa_exc.DBAPIError, backend: str) -> bool:
    """Whether an error may pass if the statement is tried again: a lost connection, a lock, a
    server restarting, a statement stopped at its time limit."""
    if exc.connection_invalidated or isinstance(exc, sa_exc.InterfaceError) or timed_out(exc, backend):
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    if backend == "sqlite":
        msg = str(exc.orig).lower()
        return any(s in msg for s in ("locked", "busy", "unable to open", "disk i/o"))
    if backend in ("mysql", "mariadb"):
        code = _mysql_code(exc.orig) if exc.orig is not None else 0
        return code in _MYSQL_TRANSIENT or code >= 2000
    return True
