"""A self-built system's statement that runs too long is stopped at `statement_timeout_seconds` by
the database (PostgreSQL statement_timeout, MariaDB max_statement_time) or by the connector
(SQLite's progress handler): the call fails naming the source and the query, after the retries.
The demo system tzxm on SQLite, PostgreSQL and MariaDB, its queries slowed down on purpose."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event

from connectors.sources.sql import SqlConnector
from guidang_demo.selfbuilt import tzxm_source
from guidang_demo.selfbuilt_data import write_tzxm
from schemas.config import SqlSource
from schemas.errors import SourceUnavailable
from tests.dbservers import fresh_database
from tests.selfbuilt_support import copy_system

SHANGHAI = ZoneInfo("Asia/Shanghai")
LIMIT = 1.0  # statement_timeout_seconds in these tests
SLOW = {  # a condition that holds, after a long while
    "sqlite": "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) "
              "SELECT count(*) FROM c) > 0",
    "postgresql": "(SELECT 1 FROM pg_sleep(30)) = 1",
    "mariadb": "SLEEP(30) = 0",
}


@pytest.fixture(scope="module")
def tzxm_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("slow-sql")
    write_tzxm(base / "tzxm.sqlite", seed=7)
    return base / "tzxm.sqlite"


def slowed(url: str, query: str, condition: str) -> dict[str, Any]:
    """tzxm's entry with `condition` added to its matters_query or its documents_query."""
    config = tzxm_source(url)
    config["statement_timeout_seconds"] = LIMIT
    if query == "matters":
        config["matters_query"] = config["matters_query"].replace(
            "AND a.GXSJ <= :until", f"AND a.GXSJ <= :until AND {condition}")
    else:
        config["documents_query"] = config["documents_query"].rstrip() + f" AND {condition}"
    return config


def collect(base: Path, config: dict[str, Any]) -> None:
    with SqlConnector(SqlSource.model_validate(config), base_dir=base, retries=1, backoff_seconds=0.01) as conn:
        list(conn.completed_between(datetime(2020, 1, 1, tzinfo=SHANGHAI), datetime(2030, 1, 1, tzinfo=SHANGHAI)))


def assert_stopped(base: Path, config: dict[str, Any], query_named: str) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        collect(base, config)
    taken = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith("source tzxm:") and query_named in message, message
    assert "statement_timeout_seconds (1 s)" in message and "after 2 attempts" in message, message
    assert taken < 2 * LIMIT + 3, taken  # two attempts stopped at the limit, not a 30 s (or endless) query


@pytest.mark.parametrize(("query", "named"), [("matters", "(matters_query)"), ("documents", "documents/steps of")])
def test_sqlite_statement_past_its_time_is_interrupted(tzxm_db: Path, tmp_path: Path, query: str, named: str) -> None:
    shutil.copy(tzxm_db, tmp_path / "tzxm.sqlite")
    assert_stopped(tmp_path, slowed("sqlite:///tzxm.sqlite", query, SLOW["sqlite"]), named)


@pytest.fixture
def slow_function() -> Iterator[None]:
    """`pause(s)`, a user function that sleeps, on every SQLite connection opened meanwhile."""

    def register(dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.create_function("pause", 1, lambda s: time.sleep(s) or 0)

    event.listen(Engine, "connect", register)
    try:
        yield
    finally:
        event.remove(Engine, "connect", register)


def test_sqlite_statement_slowed_by_a_user_function_is_interrupted(tzxm_db: Path, tmp_path: Path,
                                                                   slow_function: None) -> None:
    """A user function cannot be interrupted while it runs, but the statement ends at the next look
    at the clock: 0.05 s for each of the window's rows would take the whole window many seconds."""
    shutil.copy(tzxm_db, tmp_path / "tzxm.sqlite")
    assert_stopped(tmp_path, slowed("sqlite:///tzxm.sqlite", "matters", "pause(0.05) = 0"), "(matters_query)")


def test_a_quick_statement_is_not_stopped(tzxm_db: Path, tmp_path: Path) -> None:
    shutil.copy(tzxm_db, tmp_path / "tzxm.sqlite")
    config = tzxm_source("sqlite:///tzxm.sqlite")
    config["statement_timeout_seconds"] = LIMIT
    collect(tmp_path, config)  # the demo's own queries take milliseconds: no error


@pytest.mark.parametrize("kind", [pytest.param("postgresql", marks=pytest.mark.postgres),
                                  pytest.param("mariadb", marks=pytest.mark.mariadb)])
@pytest.mark.parametrize(("query", "named"), [("matters", "(matters_query)"), ("documents", "documents/steps of")])
def test_server_statement_past_its_time_is_stopped_by_the_database(tzxm_db: Path, tmp_path: Path, kind: str,
                                                                   query: str, named: str) -> None:
    with fresh_database(kind) as url:
        copy_system("tzxm", tzxm_db, url)
        assert_stopped(tmp_path, slowed(url, query, SLOW[kind]), named)
