"""A source lock's connection dropped in other ways than pg_terminate_backend: the TCP connection
between the night and PostgreSQL or MariaDB cut by a proxy in between, and MariaDB's KILL CONNECTION
of the lock's session. The source stops at once with one ERROR line, the unlock says nothing, and
the next night finishes it without a matter archived twice."""

from __future__ import annotations

import logging
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ledger.models import Event, MatterRecord, MatterState
from ledger.runlock import LOCK_NAME, _key, source_lock
from night.engine import run_nightly
from night.progress import SourceProgress
from schemas.config import load_settings
from tests.dbservers import ADMIN_DB, SERVERS, fresh_database
from tests.world_support import simulator

PORTS = {"postgresql": 5432, "mariadb": 3306}


class TcpProxy:
    """Forwards every connection to the database server; `cut(port)` closes, both ways, the pair
    whose server side leaves from local `port` (what a broken link does to one), `freeze(port)`
    stops forwarding its bytes, both ways, with both connections left open (a firewall that drops
    its packets: neither end hears of it)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: dict[int, tuple[socket.socket, socket.socket]] = {}
        self.frozen: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self, port: int) -> None:
        with self._lock:
            self.frozen.update(self.pairs[port])

    def _accept(self) -> None:
        while True:
            try:
                client = self.listener.accept()[0]
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self.pairs[server.getsockname()[1]] = (client, server)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while src in self.frozen:
                    time.sleep(0.1)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self, port: int) -> None:
        with self._lock:
            pair = self.pairs.pop(port)
        for s in pair:
            # the first shutdown wakes the proxy's pump, which may close the other side first
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()
        self.frozen.clear()
        with self._lock:
            for pair in self.pairs.values():
                for s in pair:
                    s.close()


@contextmanager
def _night_config(small_world: Path, url: str) -> Iterator[Path]:
    config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    config["ledger_url"] = url
    path = small_world / "guidang-cut.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    yield path


def _lock_session(admin_conn: object, backend: str, database: str) -> tuple[int, int]:
    """The lock's session on the server: its id and the client port it came from (the proxy's side)."""
    c = admin_conn
    if backend == "postgresql":
        row = c.execute(text(  # type: ignore[attr-defined]
            "SELECT l.pid, a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.objid = :k AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = :db)"
        ), {"k": _key(source_lock("unified")), "db": database}).one()
        return int(row[0]), int(row[1])
    name = f"{LOCK_NAME}:{zlib.crc32(database.encode()):08x}:{_key(source_lock('unified')):08x}"
    session = int(c.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar_one())  # type: ignore[attr-defined]
    host = c.execute(text("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = :i"),  # type: ignore[attr-defined]
                     {"i": session}).scalar_one()
    return session, int(str(host).rsplit(":", 1)[1])


@pytest.mark.parametrize(("backend", "way"), [("postgresql", "tcp-cut"), ("mariadb", "kill-connection")])
def test_a_lock_connection_cut_from_outside_stops_the_source_once_and_the_next_night_finishes(
    backend: str, way: str, small_world: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(PORTS[backend])
    with fresh_database(backend) as direct_url, proxy_closed(proxy):
        parsed = make_url(direct_url)
        database = str(parsed.database)
        url = parsed.set(port=proxy.port).render_as_string(hide_password=False) if way == "tcp-cut" else direct_url
        admin = create_engine(SERVERS[backend].format(db=ADMIN_DB[backend]), isolation_level="AUTOCOMMIT")
        cut: list[int] = []

        def cut_the_lock(p: SourceProgress) -> None:
            if p.source != "unified" or p.staged == 0 or cut:
                return
            with admin.connect() as c:
                session, port = _lock_session(c, backend, database)
                if way == "tcp-cut":
                    proxy.cut(port)
                else:
                    c.execute(text(f"KILL CONNECTION {session}"))
            cut.append(session)

        try:
            with _night_config(small_world, url) as path, simulator(small_world), \
                    caplog.at_level(logging.DEBUG, logger="guidang"):
                first = run_nightly(load_settings(path), sources=["unified"], progress=cut_the_lock)
                assert cut
                assert first["status"] == "failed", first
                assert "run lock of unified was lost" in first["sources"]["unified"]["error"], first
                errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
                assert len([r for r in errors if "unified" in r.getMessage()]) == 1, [r.getMessage() for r in errors]
                assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)
                second = run_nightly(load_settings(path), sources=["unified"])
            assert second["status"] == "completed", second
        finally:
            admin.dispose()
        engine = create_engine(direct_url)
        try:
            with Session(engine) as s:
                verified = s.execute(select(MatterRecord.project_id, func.count())
                                     .where(MatterRecord.state == MatterState.VERIFIED)
                                     .group_by(MatterRecord.source, MatterRecord.project_id)).all()
                assert verified and all(n == 1 for _p, n in verified)
                assert s.scalar(select(func.count()).where(Event.kind == "verified")) == len(verified)
                assert first["stored"]["packages"] + second["stored"]["packages"] == len(verified)
        finally:
            engine.dispose()


@contextmanager
def proxy_closed(proxy: TcpProxy) -> Iterator[None]:
    try:
        yield
    finally:
        proxy.close()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_lock_connection_that_stops_answering_is_reported_lost_in_bounded_time(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The lock's connection frozen by the proxy in between (no byte through, no reset): the check
    before a commit ends after check_seconds with the lock lost, instead of waiting with the whole
    night for an answer that never comes; the server still holds the lock (its session is alive),
    so a second run is refused; the unlock says nothing."""
    from ledger.runlock import LockLost, RunLock, RunLocked
    from ledger.store import Ledger

    proxy = TcpProxy(PORTS[backend])
    with fresh_database(backend) as direct_url, proxy_closed(proxy):
        parsed = make_url(direct_url)
        url = parsed.set(port=proxy.port).render_as_string(hide_password=False)
        with Ledger(url) as ledger:
            lock = RunLock(ledger, source_lock("unified"), check_seconds=1)
            lock.acquire("first")
            lock.check()
            admin = create_engine(SERVERS[backend].format(db=ADMIN_DB[backend]), isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as c:
                    _session, port = _lock_session(c, backend, str(parsed.database))
            finally:
                admin.dispose()
            proxy.freeze(port)
            started = time.monotonic()
            with pytest.raises(LockLost) as caught:
                lock.check()
            assert time.monotonic() - started < 1 + 2
            assert "did not answer about it within 1 s" in str(caught.value)
            with Ledger(direct_url) as direct, pytest.raises(RunLocked):
                RunLock(direct, source_lock("unified")).acquire("second")  # no second night meanwhile
            with caplog.at_level(logging.DEBUG):
                lock.release()
            assert not any(r.exc_info for r in caplog.records)
