"""A province's night on one machine: several districts' unified systems, one fonds per department.

A city's districts each run their own unified system (统建系统, one guidang source each), and each
district's departments (实施机构) archive into fonds (全宗) of their own, so a province's ledger holds
many fonds and 件号 sequences, written by several `guidang run` processes at once, each taking some of
the sources. This world is that shape at a size one machine can serve: `sources` districts, `fonds`
departments spread over them, every matter in scope and sound (the bench's documents), one
PostgreSQL ledger named by the caller, and one fs repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guidang_demo.bench_world import BENCH_FIRST_DAY, build_bench_world
from guidang_demo.world import RETENTION_FILE, write_retention_workbook

DEPARTMENT_NAMES = (
    "市场监督管理局", "卫生健康局", "交通运输局", "住房和城乡建设局", "自然资源和规划局", "生态环境局",
    "文化和广电旅游体育局", "农业农村局", "水利局", "商务局", "应急管理局", "民政局", "人力资源和社会保障局",
    "教育局", "城市管理局",
)
DISTRICTS = ("上城", "拱墅", "西湖", "滨江", "萧山", "余杭", "临平", "钱塘", "富阳", "临安", "桐庐", "淳安")


def district_area(index: int) -> str:
    """行政区划代码 of the index-th district (330102, 330105 …): the first six digits of its 办件编号."""
    return f"3301{2 + 3 * index:02d}"


def departments_of(sources: int, fonds: int) -> list[list[tuple[str, str, str]]]:
    """(实施机构, 代码, 全宗号) per district: `fonds` departments dealt out over `sources` districts."""
    out: list[list[tuple[str, str, str]]] = [[] for _ in range(sources)]
    for k in range(fonds):
        district = k % sources
        department = DEPARTMENT_NAMES[(k // sources) % len(DEPARTMENT_NAMES)]
        name = f"杭州市{DISTRICTS[district % len(DISTRICTS)]}区{department}"
        if k // sources >= len(DEPARTMENT_NAMES):
            name += f"第{k // sources // len(DEPARTMENT_NAMES) + 1}分局"
        out[district].append((name, f"11330{k:04d}MB{k:07d}"[:18], f"P{k + 1:03d}"))
    return out


def build_province_world(
    world_dir: Path, *, sources: int, fonds: int, matters: int, docs: int, size: int, ledger_url: str
) -> dict[str, Any]:
    """Write the districts' datasets, the retention table and guidang.yaml; returns the world's summary
    (`sources` with each one's data folder, `matters`, `documents`, `bytes`, `config`, `until`)."""
    if sources < 1 or fonds < sources or matters < sources:
        raise ValueError("a province needs at least one source, a fonds per source and a matter per source")
    world_dir = Path(world_dir)
    world_dir.mkdir(parents=True, exist_ok=True)
    (world_dir / "archive").mkdir()
    departments = departments_of(sources, fonds)
    summary: dict[str, Any] = {"sources": [], "matters": 0, "documents": 0, "bytes": 0, "fonds": fonds}
    for i in range(sources):
        share = matters // sources + (1 if i < matters % sources else 0)
        district = world_dir / f"district-{i + 1:02d}"
        built = build_bench_world(district, matters=share, docs=docs, size=size, seed=2026 + i,
                                  area=district_area(i), departments=[(n, c) for n, c, _ in departments[i]])
        summary["sources"].append({"name": f"district{i + 1:02d}", "data_dir": str(district / "sources" / "unified")})
        for key in ("matters", "documents", "bytes"):
            summary[key] += built[key]
        summary["until"] = built["until"]
    write_retention_workbook(world_dir / RETENTION_FILE)
    config = world_dir / "guidang.yaml"
    config.write_text(_config(departments, summary["sources"], ledger_url), encoding="utf-8")
    summary["config"] = str(config)
    return summary


def _config(departments: list[list[tuple[str, str, str]]], sources: list[dict[str, Any]], ledger_url: str) -> str:
    fonds = "".join(f"  - code: {f}\n    name: {n}\n" for district in departments for n, _, f in district)
    units = "".join(f"  - name: {n}\n    code: {c}\n    fonds: {f}\n    enabled: true\n"
                    for district in departments for n, c, f in district)
    srcs = "".join(
        f"  - name: {s['name']}\n    kind: unified\n"
        f"    base_url: ${{GUIDANG_{s['name'].upper()}_URL:-http://127.0.0.1:1}}\n"
        f"    page_size: 100\n    initial_since: \"{BENCH_FIRST_DAY.isoformat()}T00:00:00+08:00\"\n"
        for s in sources
    )
    return (
        "# guidang.yaml of a province world: one unified source per district, one fonds per department.\n"
        f"fonds:\n{fonds}ledger_url: {ledger_url}\nrepository:\n  kind: fs\n  path: archive\n"
        f"retention:\n  table: {RETENTION_FILE}\nstaging: staging\ntimezone: Asia/Shanghai\n"
        f"units:\n{units}sources:\n{srcs}"
    )
