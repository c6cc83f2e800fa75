"""`guidang audit verify` on a demo night's ledger, tampered with through SQL in the ways an insider would, on
SQLite and on PostgreSQL: each is reported naming the row or the checkpoint, and exits 1; an
untouched ledger verifies."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app
from ledger import chain
from ledger.models import Event, MatterRecord, MatterState
from night.engine import run_nightly
from schemas.config import load_settings
from schemas.digest import json_digest
from tests.dbservers import ADMIN_DB, SERVERS, fresh_database
from tests.world_support import unified_running

runner = CliRunner(env={"GUIDANG_CONFIG": None})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def night(request: pytest.FixtureRequest, small_pristine: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """(world, backend, ledger URL) after one demo night; tests tamper with copies of the ledger."""
    world = tmp_path_factory.mktemp(f"audit-{request.param}") / "world"
    shutil.copytree(small_pristine, world)
    if request.param == "sqlite":
        url = "sqlite:///ledger.sqlite"
        with unified_running(world):
            summary = run_nightly(load_settings(world / "guidang.yaml"))
        assert summary["status"] == "completed"
        yield world, "sqlite", url
        return
    with fresh_database("postgresql") as url:
        config = _config(world, url, "guidang.yaml")
        with unified_running(world):
            summary = run_nightly(load_settings(config))
        assert summary["status"] == "completed"
        yield world, "postgresql", url


def _config(world: Path, url: str, name: str) -> Path:
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    config["ledger_url"] = url
    path = world / name
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@contextmanager
def ledger_copy(night: tuple[Path, str, str]) -> Iterator[tuple[Path, Engine]]:
    """A copy of the night's ledger and a config naming it (the archive is shared, read only)."""
    world, backend, url = night
    tag = uuid.uuid4().hex[:8]
    if backend == "sqlite":
        copy = world / f"ledger-{tag}.sqlite"
        src, dst = sqlite3.connect(world / "ledger.sqlite"), sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.close()
        copy_url = f"sqlite:///{copy}"
        engine = create_engine(copy_url)
        try:
            yield _config(world, f"sqlite:///ledger-{tag}.sqlite", f"guidang-{tag}.yaml"), engine
        finally:
            engine.dispose()
        return
    name = f"guidang_c_{tag}"
    admin = create_engine(SERVERS[backend].format(db=ADMIN_DB[backend]), isolation_level="AUTOCOMMIT")
    base = url.rsplit("/", 1)[1]
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name} TEMPLATE {base}"))
    copy_url = SERVERS[backend].format(db=name)
    engine = create_engine(copy_url)
    try:
        yield _config(world, copy_url, f"guidang-{tag}.yaml"), engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def verify(config: Path) -> tuple[int, dict[str, Any]]:
    r = runner.invoke(app, ["audit", "verify", "--config", str(config), "--json"])
    return r.exit_code, json.loads(r.output)


def _recompute_chain(s: Session) -> None:
    """What an attacker with the source code does after an edit: every hash again, the head moved."""
    prev = chain.GENESIS_HASH
    for ev in s.scalars(select(Event).order_by(Event.seq)):
        ev.prev_hash = prev
        ev.hash = json_digest(chain._event_body(ev), prefix=prev)
        prev = ev.hash
    s.flush()
    last = s.scalars(select(Event).order_by(Event.seq.desc()).limit(1)).one()
    s.execute(text("UPDATE event_chain_head SET seq = :n, hash = :h"), {"n": last.seq, "h": last.hash})


def _permanent(s: Session) -> MatterRecord:
    return s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED,
                                                MatterRecord.retention_period == "Y").limit(1)).one()


def _verified(s: Session) -> MatterRecord:
    return s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED,
                                                MatterRecord.retention_period == "D10").limit(1)).one()


def tamper_digest(s: Session) -> str:
    rec = _verified(s)
    s.execute(text("UPDATE matters SET content_hash = :h WHERE id = :i"), {"h": "e" * 64, "i": rec.id})
    return f"matter row {rec.id} "


def tamper_period(s: Session) -> str:
    """A 永久 record turned into D10 ending 2027-01-01: it would show up in `retention due`."""
    rec = _permanent(s)
    s.execute(text("UPDATE matters SET retention_period = 'D10', disposition_date = '2027-01-01' WHERE id = :i"),
              {"i": rec.id})
    return f"matter row {rec.id} "


def tamper_disposition(s: Session) -> str:
    rec = _verified(s)
    s.execute(text("UPDATE matters SET disposition_date = '2026-12-31' WHERE id = :i"), {"i": rec.id})
    return f"matter row {rec.id} "


def delete_event(s: Session) -> str:
    s.execute(text("DELETE FROM events WHERE seq = 20"))
    return "event 21"


def edit_event(s: Session) -> str:
    s.execute(text("UPDATE events SET archival_code = 'Z109-WS·2026·Y·SJ-9999' WHERE seq = 30"))
    return "event 30"


def delete_tail(s: Session) -> str:
    """The last events deleted together and event_chain_head moved back to match."""
    last = s.scalar(text("SELECT MAX(seq) FROM events"))
    s.execute(text("DELETE FROM events WHERE seq > :n"), {"n": last - 3})
    s.execute(text("UPDATE event_chain_head SET seq = :n, hash = (SELECT hash FROM events WHERE seq = :n)"),
              {"n": last - 3})
    return "checkpoints/"


def recompute_after_edit(s: Session) -> str:
    """An event edited, then the whole chain recomputed with the project's own hash function."""
    s.execute(text("UPDATE events SET project_id = 'forged' WHERE seq = 12"))
    _recompute_chain(s)
    return "checkpoints/"


def recompute_after_row_edit(s: Session) -> str:
    """The thorough forger: the row changed, its last event's recorded facts and digest changed to match,
    the chain recomputed. Only the anchors outside the ledger can tell."""
    rec = _permanent(s)
    rec.retention_period, rec.disposition_date = "D10", "2027-01-01"
    s.flush()
    from ledger.rows import facts_digest, row_facts

    last = s.scalars(select(Event).where(Event.archival_code == rec.archival_code).order_by(Event.seq.desc())
                     .limit(1)).one()
    facts = row_facts(rec)
    last.payload = {**last.payload, "row": facts, "row_digest": facts_digest(facts)}
    s.flush()
    _recompute_chain(s)
    return "checkpoints/"


CASES: list[tuple[Callable[[Session], str], set[str], set[str]]] = [
    (tamper_digest, {"A-ROW-ALTERED"}, {"content_hash"}),
    (tamper_period, {"A-ROW-ALTERED"}, {"retention_period", "disposition_date"}),
    (tamper_disposition, {"A-ROW-ALTERED"}, {"disposition_date"}),
    (delete_event, {"A-EVENT-GAP", "A-EVENT-LINK"}, set()),
    (edit_event, {"A-EVENT-ALTERED"}, set()),
    (delete_tail, {"A-CHECKPOINT-AHEAD"}, set()),
    (recompute_after_edit, {"A-CHECKPOINT-CONTRADICTED"}, set()),
    (recompute_after_row_edit, {"A-CHECKPOINT-CONTRADICTED"}, set()),
]


def test_an_untouched_ledger_verifies(night: tuple[Path, str, str]) -> None:
    with ledger_copy(night) as (config, _engine):
        code, out = verify(config)
    assert code == 0, out["findings"]
    assert out["ok"] and out["findings"] == []
    assert out["matter_rows"] > 10 and out["checkpoints"] >= 2  # the night's and its batch's


@pytest.mark.parametrize(("tamper", "codes", "fields"), CASES, ids=[c[0].__name__ for c in CASES])
def test_each_tampering_is_reported_naming_the_row_and_exits_1(
    night: tuple[Path, str, str], tamper: Callable[[Session], str], codes: set[str], fields: set[str]
) -> None:
    with ledger_copy(night) as (config, engine):
        with Session(engine) as s, s.begin():
            named = tamper(s)
        code, out = verify(config)
    assert code == 1
    assert not out["ok"]
    found = {f["code"] for f in out["findings"]}
    assert codes <= found, out["findings"]
    hits = [f for f in out["findings"] if f["code"] in codes]
    assert any(named in f["where"] for f in hits), (named, hits)
    for name in fields:
        assert any(name in f["message"] for f in hits), (name, hits)
    if tamper.__name__.startswith("recompute"):  # consistent in itself: only the checkpoints object
        assert not {c for c in found if c.startswith("A-EVENT") or c.startswith("A-ROW")}, found


def test_the_text_report_names_the_row_and_the_field(night: tuple[Path, str, str]) -> None:
    with ledger_copy(night) as (config, engine):
        with Session(engine) as s, s.begin():
            named = tamper_period(s)
        r = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert r.exit_code == 1
    assert named in r.output and "retention_period 'Y' → 'D10'" in r.output
    assert "disposition_date NULL → '2027-01-01'" in r.output and "FAILED" in r.output
