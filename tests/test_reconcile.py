"""`guidang audit reconcile` (对账, 应归尽归): completed at the source against accounted for in the ledger.

Real parts: the unified simulator over HTTP answering its statistics and listing calls, the
self-built systems' count and list queries on SQLite, a real night into the SQLite ledger. The
differences are made the two ways the bureau fears: matters gone from the ledger's view of a night,
and matters that turn up at the source behind the watermark (a late 补录 the night never collects).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from openpyxl import load_workbook
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session

from custody.reconcile import reconcile
from ledger.models import MatterRecord, MatterState, Watermark
from ledger.store import Ledger
from night.engine import run_nightly
from schemas.config import load_settings
from tests.world_support import simulator

FIRST, LAST = date(2026, 10, 1), date(2026, 12, 31)  # holds the whole demo week


def report(world: Path, **kwargs: Any) -> dict[str, Any]:
    settings = load_settings(world / "guidang.yaml")
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        return reconcile(settings, ledger, kwargs.pop("first", FIRST), kwargs.pop("last", LAST), **kwargs).to_dict()


def cli(world: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "audit", "reconcile", "--config", str(world / "guidang.yaml"),
         "--from", FIRST.isoformat(), "--to", LAST.isoformat(), *args],
        capture_output=True, text=True, timeout=300,
    )


def engine_of(world: Path) -> Any:
    return create_engine(f"sqlite:///{world / 'ledger.sqlite'}")


def findings(data: dict[str, Any], code: str) -> set[tuple[str, str]]:
    return {(f["source"], pid) for f in data["findings"] if f["code"] == code for pid in f["project_ids"]}


def test_a_night_reconciles_and_deleted_or_late_matters_are_named_exactly(small_world: Path) -> None:
    with simulator(small_world) as sim:
        summary = run_nightly(load_settings(small_world / "guidang.yaml"))
        assert summary["status"] == "completed"
        clean = report(small_world)
        assert clean["ok"], clean["findings"]
        totals = clean["totals"]
        assert totals["completed"] == summary["totals"]["collected"] - summary["totals"]["superseded"]
        assert totals["completed"] == sum(totals[k] for k in ("archived", "not_in_scope", "quarantined", "waiting",
                                                                 "pending"))
        assert totals["waiting"] > 0 and totals["quarantined"] > 0 and totals["not_in_scope"] > 0

        # 1. matters gone from the ledger's view of the night: three verified rows deleted
        engine = engine_of(small_world)
        with Session(engine) as s:
            victims = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)
                                .order_by(MatterRecord.id).limit(3)).all()
            gone = {(v.source, v.project_id) for v in victims}
            s.execute(delete(MatterRecord).where(MatterRecord.id.in_([v.id for v in victims])))
            s.commit()
            marks = {w.source: w.value for w in s.scalars(select(Watermark))}
        # 2. matters that turn up at the source behind the watermark: one in the unified system,
        # one in the 双随机 system, both completed and updated days before the watermark
        like = next(iter(sim._matters))
        behind = marks["unified"] - timedelta(days=3)
        late_unified = sim.add_matter(like, finished_at=behind - timedelta(hours=1), updated_at=behind)
        late_sjjc = add_sjjc_record(small_world, marks["sjjc"] - timedelta(days=2))
        # and one ahead of the watermark: pending (the next night takes it), not a finding
        ahead = sim.add_matter(like, finished_at=marks["unified"] - timedelta(minutes=5),
                               updated_at=marks["unified"] + timedelta(minutes=30))

        data = report(small_world)
        assert not data["ok"]
        assert findings(data, "R-UNACCOUNTED") == gone | {("unified", late_unified), ("sjjc", late_sjjc)}
        assert {f["code"] for f in data["findings"]} == {"R-UNACCOUNTED"}
        assert data["totals"]["unaccounted"] == 5
        assert data["totals"]["pending"] == totals["pending"] + 1
        assert ahead not in {pid for _s, pid in findings(data, "R-UNACCOUNTED")}

        done = cli(small_world, "--json", "--xlsx", str(small_world / "对账.xlsx"))
        assert done.returncode == 1, done.stderr
        assert findings(json.loads(done.stdout), "R-UNACCOUNTED") == findings(data, "R-UNACCOUNTED")
        book = load_workbook(small_world / "对账.xlsx", read_only=True)
        assert book.sheetnames == ["对账", "差异"]
        listed = " ".join(str(c) for row in book["差异"].iter_rows(values_only=True) for c in row if c)
        assert all(pid in listed for _s, pid in gone) and late_sjjc in listed

        text = cli(small_world)
        assert text.returncode == 1 and "R-UNACCOUNTED" in text.stdout and late_unified in text.stdout

        unit = cli(small_world, "--json", "--unit", "西湖区发展和改革局")
        only = json.loads(unit.stdout)
        assert {r["unit"] for r in only["rows"]} == {"西湖区发展和改革局"}
        assert findings(only, "R-UNACCOUNTED") == {k for k in gone if k[0] == "tzxm"}
        assert unit.returncode == (1 if only["findings"] else 0)


def add_sjjc_record(world: Path, at: datetime) -> str:
    """A closed inspection record copied from an existing one, completed and modified at `at` (local
    time, as the system writes it): a late entry behind the watermark."""
    local = at.astimezone(load_settings(world / "guidang.yaml").zone).replace(tzinfo=None)
    with sqlite3.connect(world / "sources" / "sjjc.sqlite") as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM inspection_record WHERE status = 'closed' LIMIT 1").fetchone())
        row.update(record_no="JC20261101LATE", completed_at=local.isoformat(sep=" "),
                   modified_at=local.isoformat(sep=" "))
        db.execute(f"INSERT INTO inspection_record ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                   list(row.values()))
    return "JC20261101LATE"


def test_a_source_that_only_counts_is_compared_by_totals(small_world: Path) -> None:
    path = small_world / "guidang.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for src in data["sources"]:
        if src["name"] == "tzxm":
            src.pop("list_query"), src.pop("list_columns")
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with simulator(small_world):
        run_nightly(load_settings(path))
        assert report(small_world, sources=["tzxm"])["ok"]
        engine = engine_of(small_world)
        with Session(engine) as s:
            victim = s.scalars(select(MatterRecord).where(MatterRecord.source == "tzxm",
                                                          MatterRecord.state == MatterState.VERIFIED)).first()
            assert victim is not None
            s.delete(victim)
            s.commit()
        out = report(small_world, sources=["tzxm"])
    assert out["sources"] == {"tzxm": "counted"}
    [finding] = out["findings"]
    assert finding["code"] == "R-COUNT-DIFFERS" and finding["project_ids"] == []
    assert finding["unit"] == victim.agency and finding["matter_type"] == victim.matter_type
    assert out["totals"]["unaccounted"] == 1


def test_an_unreachable_source_is_a_finding_not_a_pass(small_world: Path) -> None:
    with simulator(small_world):
        run_nightly(load_settings(small_world / "guidang.yaml"))
    out = report(small_world, sources=["unified"])  # the simulator is gone
    assert not out["ok"] and [f["code"] for f in out["findings"]] == ["R-SOURCE-UNAVAILABLE"]
