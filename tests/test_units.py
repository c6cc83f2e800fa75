"""Units (实施机构) enabled one by one: waiting matters are counted, never lost, and archived once enabled.

The demo world's guidang.yaml registers seven units; 杭州市生态环境局西湖分局 (HB, the 双随机
inspection system's environmental inspections) and 西湖区卫生健康局 start disabled. Real parts: the
unified simulator over HTTP, the self-built systems in SQLite, the fs repository, the SQLite ledger.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.models import Event, MatterRecord, MatterState, WaitingMatter
from night.engine import run_nightly
from schemas.config import load_settings
from schemas.findings import GuidangError
from tests.world_support import unified_running

HB = "杭州市生态环境局西湖分局"


def night(world: Path) -> dict[str, Any]:
    with unified_running(world):
        return run_nightly(load_settings(world / "guidang.yaml"))


def edit_units(world: Path, **changes_by_name: dict[str, Any]) -> None:
    path = world / "guidang.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for unit in data["units"]:
        unit.update(changes_by_name.get(unit["name"], {}))
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def rows(world: Path, model: Any) -> list[Any]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(model)))
    finally:
        engine.dispose()


def sjjc_hb_matters(world: Path) -> set[str]:
    """The environmental inspections the 双随机 system holds: what must wait, then be archived."""
    import sqlite3

    with sqlite3.connect(world / "sources" / "sjjc.sqlite") as db:
        return {r[0] for r in db.execute(
            "SELECT r.record_no FROM inspection_record r JOIN inspection_task t ON t.task_no = r.task_no"
            " WHERE t.dept_name = ? AND r.status = 'closed'", (HB,))}


def test_disabled_unit_waits_then_is_archived_once_enabled(small_world: Path) -> None:
    expected = sjjc_hb_matters(small_world)
    assert expected, "the small world must hold environmental inspections"
    first = night(small_world)
    assert first["status"] == "completed"
    assert first["sources"]["sjjc"]["waiting"] == len(expected)
    waiting = {w.project_id for w in rows(small_world, WaitingMatter) if w.resolved_at is None}
    assert waiting == expected
    assert not {r.project_id for r in rows(small_world, MatterRecord)} & expected  # nothing of HB archived
    assert {w.reason for w in rows(small_world, WaitingMatter)} == {"unit-disabled"}

    again = night(small_world)  # still disabled: counted again in the night, recorded once
    assert again["sources"]["sjjc"]["waiting"] <= len(expected)
    assert sum(1 for e in rows(small_world, Event) if e.kind == "waiting") == len(expected)

    edit_units(small_world, **{HB: {"enabled": True}})
    enabled = night(small_world)
    records = [r for r in rows(small_world, MatterRecord) if r.project_id in expected]
    reached = {r.project_id for r in records if r.state in (MatterState.VERIFIED, MatterState.QUARANTINED)}
    quarantined = set(enabled["sources"]["sjjc"].get("quarantine_reasons", {}))
    assert {r.project_id for r in records if r.state == MatterState.VERIFIED}, "enabling archives its matters"
    assert reached | _held(small_world, expected) == expected, (quarantined, expected - reached)
    assert all(w.resolved_at is not None for w in rows(small_world, WaitingMatter))
    kinds = [e.kind for e in rows(small_world, Event)]
    assert kinds.count("enablement-backfill") == 1 and kinds.count("waiting-resolved") == len(expected)

    last = night(small_world)  # nothing twice
    assert last["totals"]["archived"] == 0 and last["totals"]["waiting"] == 0
    assert len([r for r in rows(small_world, MatterRecord) if r.project_id in expected]) == len(records)


def _held(world: Path, ids: set[str]) -> set[str]:
    from tests.world_support import outcome

    return {pid for (_src, pid) in outcome(world)[1] if pid in ids}


def test_type_not_enabled_and_enabled_from_a_later_date(small_world: Path) -> None:
    """A unit enabled for 行政许可 only keeps its other types waiting; one enabled from a date after
    the night keeps everything waiting until that night."""
    edit_units(small_world, **{
        "西湖区市场监督管理局": {"matter_types": ["01"]},
        "西湖区发展和改革局": {"enabled_from": "2099-01-01"},
    })
    night(small_world)
    reasons: dict[str, set[str]] = {}
    for w in rows(small_world, WaitingMatter):
        reasons.setdefault(w.agency, set()).add(f"{w.reason}:{w.matter_type}")
    assert all(r.startswith("type-not-enabled:") and not r.endswith(":01") for r in reasons["西湖区市场监督管理局"])
    assert reasons["西湖区发展和改革局"] == {"unit-not-yet-enabled:01", "unit-not-yet-enabled:10"}
    archived = {(r.agency, r.matter_type) for r in rows(small_world, MatterRecord) if r.state == MatterState.VERIFIED}
    assert ("西湖区市场监督管理局", "01") in archived
    assert not any(a == "西湖区发展和改革局" for a, _t in archived)


def test_unregistered_agency_waits_and_unit_fonds_and_org_code_apply(small_world: Path) -> None:
    path = small_world / "guidang.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["fonds"].append({"code": "Z200", "name": "杭州市西湖区发展和改革局"})
    data["units"] = [u for u in data["units"] if u["name"] != "西湖区民政局"]  # 民政局 unregistered
    for u in data["units"]:
        if u["name"] == "西湖区发展和改革局":
            u["fonds"] = "Z200"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    night(small_world)
    waiting = {w.reason for w in rows(small_world, WaitingMatter) if w.agency == "西湖区民政局"}
    assert waiting == {"unit-unknown"}
    fg = [r for r in rows(small_world, MatterRecord) if r.agency == "西湖区发展和改革局" and r.archival_code]
    assert fg and all(r.fonds == "Z200" and r.archival_code.startswith("Z200-") for r in fg)
    others = [r for r in rows(small_world, MatterRecord) if r.agency != "西湖区发展和改革局" and r.archival_code]
    assert others and all(r.fonds == "Z109" for r in others)


@pytest.mark.parametrize(("units", "message"), [
    ([{"name": "甲局", "enabled": True}, {"name": "甲 局"}], "more than one unit"),
    ([{"name": "甲局", "fonds": "Z999"}], "fonds 'Z999' is not declared"),
    ([{"name": "甲局", "matter_types": ["77"]}], "unknown 事项类型 77"),
])
def test_bad_units_are_refused_naming_the_key(tmp_path: Path, units: list[dict[str, Any]], message: str) -> None:
    cfg = tmp_path / "guidang.yaml"
    cfg.write_text(yaml.safe_dump({
        "fonds": [{"code": "Z109", "name": "某局"}],
        "sources": [{"name": "u", "kind": "unified", "base_url": "http://127.0.0.1:1"}],
        "units": units,
    }, allow_unicode=True), encoding="utf-8")
    with pytest.raises(GuidangError, match=message):
        load_settings(cfg)


def rollout(world: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "audit", "rollout", "--config", str(world / "guidang.yaml"), "--json",
         *args], capture_output=True, text=True, timeout=120,
    )
    return done.returncode, json.loads(done.stdout)


def test_rollout_shows_each_unit_and_its_target(small_world: Path) -> None:
    night(small_world)
    code, data = rollout(small_world, "--as-of", "2026-12-01")
    units = {u["unit"]: u for u in data["units"]}
    assert code == 1  # HB's target is a month away and it is not enabled
    hb = units[HB]
    assert (hb["enabled"], hb["status"], hb["target_date"]) == (False, "at_risk", "2026-12-31")
    assert hb["waiting"] == len(sjjc_hb_matters(small_world)) and hb["archived"] == 0
    assert units["西湖区住房和城乡建设局"]["status"] == "met"  # licensing by the end of September
    assert units["西湖区发展和改革局"]["status"] == "met"
    assert units["西湖区卫生健康局"]["enabled"] is False and units["西湖区卫生健康局"]["status"] == "no_target"
    sj = units["西湖区市场监督管理局"]
    assert sj["enabled_now"] and sj["archived"] > 0 and sj["rule_share"] == 1.0
    rs = units["西湖区人力资源和社会保障局"]  # 职业技能等级认定 has no rule in the demo table
    assert rs["rule_share"] == 0.0 and rs["quarantined"] > 0
    assert data["last_night"]["status"] == "completed"
    assert sum(u["last_night"].get("archived", 0) for u in data["units"]) > 0

    _, later = rollout(small_world, "--as-of", "2027-01-05")
    assert {u["unit"]: u["status"] for u in later["units"]}[HB] == "missed"
    edit_units(small_world, **{HB: {"enabled": True}})
    night(small_world)
    _, after = rollout(small_world, "--as-of", "2026-12-01")
    hb = {u["unit"]: u for u in after["units"]}[HB]
    assert hb["status"] == "met" and hb["waiting"] == 0 and hb["archived"] > 0


def test_a_quarantine_retry_of_a_disabled_units_matter_leaves_it_waiting(small_world: Path) -> None:
    from ledger.models import QuarantineEntry
    from night.quarantine_retry import retry_quarantined

    night(small_world)
    entries = [q for q in rows(small_world, QuarantineEntry)
               if q.resolved_at is None and (q.record.get("matter") or {}).get("agency") == "西湖区市场监督管理局"]
    assert entries, "the small world quarantines a matter of 西湖区市场监督管理局"
    edit_units(small_world, **{"西湖区市场监督管理局": {"enabled": False}})
    with unified_running(small_world):
        retry_quarantined(load_settings(small_world / "guidang.yaml"), [e.id for e in entries])
    after = {q.id: q for q in rows(small_world, QuarantineEntry)}
    assert all(after[e.id].resolution == "waiting: unit-disabled" for e in entries)
    waiting = {w.project_id: w.reason for w in rows(small_world, WaitingMatter) if w.resolved_at is None}
    assert all(waiting.get(e.project_id) == "unit-disabled" for e in entries)
