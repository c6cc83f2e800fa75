"""A source lock that is lost mid-night stops that source at once (PostgreSQL: the lock's backend
terminated, as a restart or a failover does): one clear ERROR line, no traceback, and a second
night started afterwards finishes the source without a matter archived twice."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from ledger.models import Event, MatterRecord, MatterState, Run
from ledger.runlock import _key, source_lock
from night.engine import run_nightly
from night.progress import SourceProgress
from schemas.config import load_settings
from tests.dbservers import ADMIN_DB, SERVERS, fresh_database
from tests.world_support import simulator


def test_a_terminated_lock_backend_stops_the_source_and_the_next_night_is_not_doubled(
    small_world: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_database("postgresql") as url:
        config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
        config["ledger_url"] = url
        path = small_world / "guidang-pg.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        admin = create_engine(SERVERS["postgresql"].format(db=ADMIN_DB["postgresql"]), isolation_level="AUTOCOMMIT")
        terminated: list[int] = []

        def cut_the_lock(p: SourceProgress) -> None:
            if p.source != "unified" or p.staged == 0 or terminated:
                return
            with admin.connect() as c:
                pid = c.execute(text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :k AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = :db)"
                ), {"k": _key(source_lock("unified")), "db": url.rsplit("/", 1)[1]}).scalar_one()
                assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            terminated.append(pid)

        try:
            with simulator(small_world), caplog.at_level(logging.DEBUG, logger="guidang"):
                first = run_nightly(load_settings(path), sources=["unified"], progress=cut_the_lock)
                assert terminated
                assert first["status"] == "failed"
                assert "run lock of unified was lost" in first["sources"]["unified"]["error"]
                errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
                assert len([r for r in errors if "lock of unified was lost" in r.getMessage()]) == 1, errors
                assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)

                second = run_nightly(load_settings(path), sources=["unified"])  # not refused: the lock is free
            assert second["status"] == "completed", second
        finally:
            admin.dispose()
        engine = create_engine(url)
        try:
            with Session(engine) as s:
                verified = s.execute(select(MatterRecord.source, MatterRecord.project_id, func.count())
                                     .where(MatterRecord.state == MatterState.VERIFIED)
                                     .group_by(MatterRecord.source, MatterRecord.project_id)).all()
                assert verified and all(n == 1 for *_key_, n in verified)
                twice = s.execute(select(Event.archival_code, func.count()).where(Event.kind == "verified")
                                  .group_by(Event.archival_code).having(func.count() > 1)).all()
                assert twice == []
                assert s.scalar(select(func.count()).where(Event.kind == "verified")) == len(verified)
                assert first["stored"]["packages"] + second["stored"]["packages"] == len(verified)
                assert {r.status for r in s.scalars(select(Run))} == {"failed", "completed"}
        finally:
            engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_lock_whose_session_was_killed_is_reported_lost_and_released_quietly(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock's own session ended on the server (pg_terminate_backend, MariaDB KILL): `check`
    says so in one sentence, a second run can take the lock, and `release` raises nothing."""
    from ledger.runlock import LockLost, RunLock
    from ledger.store import Ledger

    with fresh_database(backend) as url, Ledger(url) as ledger:
        lock = RunLock(ledger, source_lock("unified"))
        lock.acquire("first")
        lock.check()  # held: nothing to say
        admin = create_engine(SERVERS[backend].format(db=ADMIN_DB[backend]), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                if backend == "postgresql":
                    c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": lock._session_id})
                else:
                    c.execute(text(f"KILL {int(lock._session_id or 0)}"))
        finally:
            admin.dispose()
        with pytest.raises(LockLost) as caught:
            lock.check()
        assert "run lock of unified was lost" in str(caught.value)
        second = RunLock(ledger, source_lock("unified"))
        second.acquire("second")  # not refused: the server released it with the session
        with caplog.at_level(logging.DEBUG):
            lock.release()
        assert not any(r.exc_info for r in caplog.records)
        second.release()


def test_a_worker_stops_when_another_run_holds_its_source_lock(tmp_path: Path) -> None:
    """A worker process holds no lock; before its commits it reads the holder row, which a second
    night rewrites when it takes the lock: from then on the worker's commits are refused."""
    from ledger.runlock import LockLost, RunLock, check_holder
    from ledger.store import Ledger

    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger:
        first = RunLock(ledger, source_lock("unified"))
        first.acquire("first-night")
        check_holder(ledger, source_lock("unified"), "first-night")  # its own run: nothing to say
        first.release()  # lost, as the server or the kernel drops it
        second = RunLock(ledger, source_lock("unified"))
        second.acquire("second-night")
        try:
            with pytest.raises(LockLost, match="held by run second-night"):
                check_holder(ledger, source_lock("unified"), "first-night")
        finally:
            second.release()
