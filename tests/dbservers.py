"""Fresh, uniquely named PostgreSQL / MariaDB databases for a test, dropped afterwards.

Without the server a test skips, unless GUIDANG_REQUIRE_SERVICES=1 (CI sets it): then it fails, so a
missing server can never turn a required check green.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

SERVERS = {
    "postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4",
}
ADMIN_DB = {"postgresql": "postgres", "mariadb": "mysql"}


@contextmanager
def fresh_database(kind: str, options: str = "") -> Iterator[str]:
    """Yield the URL of a new empty database on the `kind` server, created with `options` (e.g.
    PostgreSQL's ENCODING 'SQL_ASCII' for a legacy database); drop it afterwards."""
    name = f"guidang_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(SERVERS[kind].format(db=ADMIN_DB[kind]), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f"CREATE DATABASE {name} {options}".strip()))
    except OperationalError as exc:
        admin.dispose()
        message = f"{kind} server not reachable on 127.0.0.1: {exc.__class__.__name__}"
        if os.environ.get("GUIDANG_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (GUIDANG_REQUIRE_SERVICES=1: this test is required)")
        pytest.skip(message)
    try:
        yield SERVERS[kind].format(db=name)
    finally:
        with admin.connect() as c:
            if kind == "postgresql":
                c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
