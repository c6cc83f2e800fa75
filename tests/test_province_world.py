"""The province world of scripts/bench_province.py: a configuration guidang accepts, one fonds per
department, 办件编号 unique across the districts' systems."""

from __future__ import annotations

import json
from pathlib import Path

from guidang_demo.province_world import build_province_world
from guidang_demo.unified_data import MATTERS_FILE
from schemas.config import load_settings


def test_each_department_archives_into_its_own_fonds(tmp_path: Path, monkeypatch) -> None:
    world = build_province_world(tmp_path / "w", sources=3, fonds=9, matters=30, docs=1, size=2000,
                                 ledger_url="sqlite:///ledger.sqlite")
    monkeypatch.setenv("GUIDANG_DISTRICT01_URL", "http://127.0.0.1:1")
    settings = load_settings(world["config"])
    assert [s.name for s in settings.sources] == ["district01", "district02", "district03"]
    assert len({f.code for f in settings.fonds}) == 9
    projids: list[str] = []
    fonds_seen: set[str] = set()
    for entry, source in zip(world["sources"], settings.sources, strict=True):
        records = json.loads((Path(entry["data_dir"]) / MATTERS_FILE).read_text(encoding="utf-8"))
        assert len(records) == 10
        for r in records:
            projids.append(r["PROJID"])
            fonds_seen.add(settings.fonds_for(source, r["DEPTNAME"], r["DEPTCODE"]).code)
    assert len(set(projids)) == 30  # each district's 办件编号 begins with its own 行政区划代码
    assert len(fonds_seen) == 9  # every department's matters go to its own fonds
