"""The ledger on SQLite, PostgreSQL and MariaDB: tamper evidence, gap-free 件号 allocation, and a schema
that the migrations and the models agree on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, delete, inspect, select, text, update

from ledger import chain, sequences, store
from ledger.models import ArchiveSequence, Base, Event, MatterRecord, MatterState
from tests.dbservers import fresh_database


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[store.Ledger]:
    if request.param == "sqlite":
        with store.Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as led:
            yield led
        return
    with fresh_database(request.param) as url, store.Ledger(url) as led:
        yield led


def _write_events(ledger: store.Ledger, n: int) -> None:
    with ledger.transaction() as s:
        run = store.start_run(s, {"test": True})
        for i in range(n):
            chain.append_event(
                s, "test", run_id=run.id, source="unified", project_id=f"P{i}", payload={"i": i, "名称": "食品经营许可"}
            )


def _verify(ledger: store.Ledger) -> tuple[int, set[str]]:
    with ledger.read() as s:
        count, findings = chain.verify_chain(s)
    return count, {f.code for f in findings}


def test_intact_chain_verifies(ledger: store.Ledger) -> None:
    _write_events(ledger, 20)
    assert _verify(ledger) == (21, set())


def test_altered_event_is_detected(ledger: store.Ledger) -> None:
    _write_events(ledger, 10)
    with ledger.transaction() as s:
        s.execute(update(Event).where(Event.seq == 5).values(project_id="P-forged"))
    _, codes = _verify(ledger)
    assert codes == {"A-EVENT-ALTERED"}


def test_deleted_event_in_the_middle_is_detected(ledger: store.Ledger) -> None:
    _write_events(ledger, 10)
    with ledger.transaction() as s:
        s.execute(delete(Event).where(Event.seq == 4))
    _, codes = _verify(ledger)
    assert {"A-EVENT-GAP", "A-EVENT-LINK"} <= codes


def test_deleted_last_event_is_detected(ledger: store.Ledger) -> None:
    _write_events(ledger, 10)
    with ledger.transaction() as s:
        last = s.scalars(select(Event.seq).order_by(Event.seq.desc()).limit(1)).one()
        s.execute(delete(Event).where(Event.seq == last))
    _, codes = _verify(ledger)
    assert codes == {"A-EVENT-TRUNCATED"}


def test_item_numbers_are_gap_free_under_concurrent_writers(ledger: store.Ledger) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            with ledger.transaction() as s:
                n = sequences.allocate_item_number(
                    s, fonds="Z109", category_code="WS", year=2026, retention_period="D30", org_code="SJ"
                )
                chain.append_event(s, "numbered", payload={"item": n})
            with lock:
                got.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 61))
    with ledger.read() as s:
        seq = s.scalars(select(ArchiveSequence)).one()
    assert seq.last_item == 60
    assert _verify(ledger) == (60, set())


def test_rolled_back_allocation_leaves_no_gap(ledger: store.Ledger) -> None:
    def allocate() -> int:
        with ledger.transaction() as s:
            return sequences.allocate_item_number(
                s, fonds="Z109", category_code="WS", year=2026, retention_period="Y", org_code=""
            )

    assert allocate() == 1
    with pytest.raises(RuntimeError), ledger.transaction() as s:
        sequences.allocate_item_number(
            s, fonds="Z109", category_code="WS", year=2026, retention_period="Y", org_code=""
        )
        raise RuntimeError("crash after allocating, before the matter row was committed")
    assert allocate() == 2


def test_migrations_and_models_agree(ledger: store.Ledger) -> None:
    """A database brought to `alembic upgrade head` is what the models describe: nothing to autogenerate."""
    with ledger.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_head_revision_the_ledger_trusts_is_the_newest_migration_script() -> None:
    """A ledger at store.HEAD_REVISION is opened without Alembic: a new migration script must move it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_heads() == [store.HEAD_REVISION]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_ledger_one_revision_behind_is_brought_to_head_when_opened(kind: str, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    def at(url: str, revision: str) -> None:
        engine = create_engine(url)
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
        engine.dispose()

    def opened(url: str) -> list[str]:
        at(url, "0005_retention_label_unique")
        with store.Ledger(url) as led, led.engine.connect() as connection:
            assert "disposition" in " ".join(inspect(connection).get_table_names())
            return [r[0] for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version")]

    if kind == "sqlite":
        assert opened(f"sqlite:///{tmp_path / 'old.sqlite'}") == [store.HEAD_REVISION]
        return
    with fresh_database(kind) as url:
        assert opened(url) == [store.HEAD_REVISION]


def test_matter_state_is_stored_as_its_plain_value(ledger: store.Ledger) -> None:
    """The enum column keeps the strings ledgers already hold ("not_in_scope", not "NOT_IN_SCOPE")."""
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    row = MatterRecord(
        source="unified",
        project_id="P1",
        version=1,
        content_hash="0" * 64,
        state=MatterState.NOT_IN_SCOPE,
        service_code="S1",
        service_name="食品经营许可",
        matter_type="许可",
        agency="市场监管局",
        completed_at=moment,
        source_updated_at=moment,
        record={},
        appraisal={},
    )
    with ledger.transaction() as s:
        s.add(row)
    with ledger.transaction() as s:
        assert s.execute(text("SELECT state FROM matters")).scalar_one() == "not_in_scope"
        s.execute(text("UPDATE matters SET state = 'verified'"))  # as a ledger written before the enum holds it
    with ledger.read() as s:
        again = s.get(MatterRecord, row.id)
    assert again is not None and again.state is MatterState.VERIFIED
