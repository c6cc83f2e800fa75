"""The demo world: one folder holding everything a district's night of archiving needs.

    guidang.yaml        the configuration a user would write (commented), written last
    retention.xlsx      归档范围和保管期限表 as archivists keep it
    sources/unified/    the unified system's dataset, served over HTTP by `UnifiedSimulator`
    sources/tzxm.sqlite                     投资项目在线审批监管平台 (files in a BLOB column)
    sources/sjjc.sqlite + sources/sjjc_files/   双随机一公开监管平台 (files on disk)
    world.json          the summary `build_world` returned when it built the world

Everything is derived from the seed, so two worlds built from one seed hold the same matters and the
same bytes. An existing world is never touched: its presence is marked by guidang.yaml, which is
why that file is written last.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from guidang_demo.catalogue import DEMO_CATALOGUE, DEMO_FONDS
from guidang_demo.selfbuilt import SJJC_NAME, TZXM_NAME, sjjc_source, tzxm_source
from guidang_demo.selfbuilt_data import write_sjjc, write_tzxm
from guidang_demo.unified_data import write_unified_dataset
from retention import COLUMNS
from schemas.findings import GuidangError
from schemas.model import MATTER_TYPES

CONFIG_FILE = "guidang.yaml"
SUMMARY_FILE = "world.json"
RETENTION_FILE = "retention.xlsx"
SOURCES_DIR = "sources"
FONDS_NAME = "杭州市西湖区数据资源管理局"
RETENTION_HEADERS: tuple[str, ...] = tuple(COLUMNS.values())  # the standard headers, in their order
_PERIOD_LABELS = {"Y": "永久", "D30": "30年", "D10": "10年"}
_BASIS = "《政务服务事项电子文件归档规范》"


def build_world(world_dir: Path, *, seed: int = 2026, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Create the demo world in `world_dir` unless one is there; return its summary.

    The world is built in a sibling folder and renamed into place, so a build that is killed half-way
    leaves nothing behind that the next `guidang demo` would trip over. `counts` shrinks the sources
    (e.g. {"unified": 24, "tzxm": 8, "sjjc": 10}) for tests that run many nights.

    The summary has `matters` (total), `by_source`, `documents`, `matter_types`, `agencies`,
    `service_codes`, `defects` per source, the per-source summaries under `sources`, `config`
    (the guidang.yaml path) and `reused` (True when an existing world was returned untouched).
    """
    world_dir = Path(world_dir)
    config = world_dir / CONFIG_FILE
    if config.exists():
        summary_path = world_dir / SUMMARY_FILE
        summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
        summary.update({"world_dir": str(world_dir), "config": str(config), "reused": True})
        return summary
    if world_dir.exists() and any(world_dir.iterdir()):
        raise GuidangError(
            f"{world_dir} is not empty and holds no {CONFIG_FILE}: not a demo world; choose an empty or new folder"
        )

    final_dir, world_dir = world_dir, world_dir.parent / f".{world_dir.name}.building"
    shutil.rmtree(world_dir, ignore_errors=True)  # what a killed build left
    n = {"unified": 180, "tzxm": 60, "sjjc": 80, **(counts or {})}
    sources = world_dir / SOURCES_DIR
    sources.mkdir(parents=True, exist_ok=True)
    unified = write_unified_dataset(sources / "unified", seed=seed, count=n["unified"])
    tzxm = write_tzxm(sources / "tzxm.sqlite", seed=seed, count=n["tzxm"])
    sjjc = write_sjjc(sources / "sjjc.sqlite", sources / "sjjc_files", seed=seed, count=n["sjjc"])
    rows = write_retention_workbook(world_dir / RETENTION_FILE)
    (world_dir / "archive").mkdir(exist_ok=True)  # the fs repository refuses a missing root (unmounted volume)

    unified_codes: dict[str, int] = dict(unified["by_service"])
    service_codes = {**unified_codes, **tzxm["service_codes"], **sjjc["service_codes"]}
    catalogue = {e.service_code: e for e in DEMO_CATALOGUE}
    summary = {
        "world_dir": str(final_dir),
        "config": str(config),
        "seed": seed,
        "matters": unified["completed"] + tzxm["matters"] + sjjc["matters"],
        "by_source": {"unified": unified["completed"], "tzxm": tzxm["matters"], "sjjc": sjjc["matters"]},
        "documents": unified["documents"] + tzxm["documents"] + sjjc["documents"],
        "service_codes": dict(sorted(service_codes.items())),
        "matter_types": sorted({catalogue[c].matter_type for c in service_codes}),
        "agencies": sorted({catalogue[c].agency for c in service_codes}),
        "retention_rows": rows,
        "defects": {"unified": unified["defects"], "tzxm": tzxm["defects"], "sjjc": sjjc["defects"]},
        "sources": {"unified": unified, "tzxm": tzxm, "sjjc": sjjc},
    }
    # the summary names where things will be, not the scratch folder they were built in
    summary = json.loads(json.dumps(summary, ensure_ascii=False, default=str).replace(str(world_dir), str(final_dir)))
    (world_dir / SUMMARY_FILE).write_text(
        json.dumps(summary, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8"
    )
    (world_dir / CONFIG_FILE).write_text(render_config(), encoding="utf-8")
    if final_dir.exists():
        final_dir.rmdir()  # only an empty folder gets here (leftovers were refused above)
    os.replace(world_dir, final_dir)
    return {**summary, "reused": False}


def retention_rows() -> list[dict[str, Any]]:
    """The demo table's rows, keyed by the Chinese headers: one per catalogue entry with a rule, and
    one 材料类别 row (食品经营许可 过程材料 kept 10 years) so that a group-level override shows."""
    rows: list[dict[str, Any]] = []

    def row(entry: Any, group: str, scope: str, period: str | None) -> dict[str, Any]:
        return {
            "事项编码": entry.service_code,
            "事项名称": entry.service_name,
            "事项类型": f"{entry.matter_type} {MATTER_TYPES[entry.matter_type]}",
            "实施机构": entry.agency,
            "材料类别": group,
            "归档范围": scope,
            "保管期限": period,
            "门类代码": "WS",
            "机构问题代码": entry.org_code,
            "生效日期": date(2020, 1, 1),
            "失效日期": None,
            "依据": _BASIS,
        }

    for entry in DEMO_CATALOGUE:
        if entry.retention == "":
            continue  # no rule on purpose: coverage and quarantine (Q-RETENTION-NO-RULE) show it
        if entry.retention == "不归档":
            rows.append(row(entry, "全部", "不归档", None))
        else:
            rows.append(row(entry, "全部", "归档", _PERIOD_LABELS[entry.retention]))
        if entry.service_code == "330106-XK-0001":
            rows.append(row(entry, "过程", "归档", "10年"))
    return rows


def write_retention_workbook(path: Path) -> int:
    """Write `retention_rows()` to the first sheet of an XLSX workbook; returns the number of rules."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "归档范围和保管期限表"
    ws.append(list(RETENTION_HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    rows = retention_rows()
    for r in rows:
        ws.append([r[h] for h in RETENTION_HEADERS])
    for n in range(2, len(rows) + 2):
        ws.cell(row=n, column=RETENTION_HEADERS.index("生效日期") + 1).number_format = "yyyy-mm-dd"
    for letter, width in zip("ABCDEFGHIJKL", (18, 36, 14, 26, 10, 10, 10, 10, 12, 12, 12, 34), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    wb.properties.creator = "guidang demo"
    wb.properties.created = wb.properties.modified = datetime(2026, 1, 1)
    wb.save(path)
    return len(rows)


def _dump_item(item: dict[str, Any]) -> str:
    """One list item of `sources:`, multi-line strings (the SQL) as `|` blocks so that the file
    reads like one a person wrote."""

    class Dumper(yaml.SafeDumper):
        pass

    def str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, str_block)
    text = yaml.dump([item], Dumper=Dumper, allow_unicode=True, sort_keys=False, width=200)
    return "".join("  " + line if line.strip() else line for line in text.splitlines(keepends=True))


def render_config() -> str:
    """guidang.yaml of the demo world; the self-built entries come from `tzxm_source` / `sjjc_source`
    so that what the tests drive and what a user reads are the same description."""
    tzxm = _dump_item(tzxm_source(f"sqlite:///{SOURCES_DIR}/tzxm.sqlite"))
    sjjc = _dump_item(sjjc_source(f"sqlite:///{SOURCES_DIR}/sjjc.sqlite", f"{SOURCES_DIR}/sjjc_files"))
    return f"""\
# guidang.yaml — 演示环境 (demo world) of guidang, the nightly archiving of completed matters.
# Paths are relative to this file's folder. ${{NAME}} / ${{NAME:-default}} take a value from the
# environment, which is where passwords and keys belong (never in this file).

# 全宗: the archival unit whose 档号 sequences packages join (DA/T 13-2022 form by default:
# 全宗号-门类代码·年度·保管期限·机构问题代码-件号, e.g. {DEMO_FONDS}-WS·2026·D30·SJ-0001).
fonds:
  - code: {DEMO_FONDS}
    name: {FONDS_NAME}

# 移交台账 (runs, watermarks, quarantine, 件号 sequences, hash-chained audit events).
# SQLite for the demo; PostgreSQL in production, e.g.
#   ledger_url: postgresql+psycopg2://guidang:${{GUIDANG_LEDGER_PASSWORD}}@db.example/guidang
ledger_url: sqlite:///ledger.sqlite

# 档案库: a folder here; an S3-compatible store in production (kind: s3, bucket: ...).
repository:
  kind: fs
  path: archive

# 归档范围和保管期限表, used until a version has been imported into the ledger.
retention:
  table: {RETENTION_FILE}

# Work folder for packages being built and checked.
staging: staging
timezone: Asia/Shanghai

sources:
  # 政务服务网统建系统, online-archiving interface (HTTP JSON). `guidang demo` starts the simulator
  # on a free port and sets GUIDANG_UNIFIED_URL; the default is for running it by hand:
  #   python -m guidang_demo {SOURCES_DIR}/unified --port 8765
  - name: unified
    kind: unified
    base_url: ${{GUIDANG_UNIFIED_URL:-http://127.0.0.1:8765}}
    page_size: 100

  # 自建系统: {TZXM_NAME} (西湖区发展和改革局). Upper-case pinyin tables; the files are a
  # BLOB column (FJNR) read in slices by FJID. 归档回传 writes the 档号 back (GDZT/GDDH).
  # Everything guidang knows about this system is in this entry: no code of its own.
{tzxm}
  # 自建系统: {SJJC_NAME} (市场监管、生态环境). Snake-case tables; the files are relative
  # paths under {SOURCES_DIR}/sjjc_files. Every record is a 行政检查, hence the constant 事项类型 06.
{sjjc}
# 实施机构: the units the bureau enables for online archiving one by one, first for 行政许可 (01)
# and then for every category, against the dates it sets. A matter of a unit or 事项类型 not yet
# enabled waits (待启用): it is counted, never lost, and archived by the first night after the unit
# is enabled (`guidang audit rollout` shows where each unit stands).
units:
{_units_block()}
# 控制台 (`guidang web`): sign-in required; it reads, and places holds and appraises as `guidang
# disposition` does. DEMO users only, their passwords written here in the clear for the demo's sake:
# {", ".join(f"{u} / {pw}" for u, _r, pw in DEMO_USERS)}.
# A real install makes each hash with `guidang web --hash-password` and never writes a password.
# The session-signing key comes from the environment, e.g. GUIDANG_WEB_KEY=$(openssl rand -hex 32).
web:
  secret_key_env: GUIDANG_WEB_KEY
  session_minutes: 30
  users:
{_users_block()}"""


# (username, role, password) of the demo console's users: one per role.
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("auditor", "auditor", "demo-auditor"),
    ("archivist", "archivist", "demo-archivist"),
    ("approver", "approver", "demo-approver"),
    ("operations", "operations", "demo-operations"),
)


def _users_block() -> str:
    """argon2id hashes with a salt derived from the username, so that two demo worlds are the same
    bytes (a real hash takes a random salt: `guidang web --hash-password`)."""
    import hashlib

    from argon2.low_level import Type, hash_secret

    lines = []
    for user, role, password in DEMO_USERS:
        salt = hashlib.sha256(f"guidang-demo:{user}".encode()).digest()[:16]
        hashed = hash_secret(password.encode(), salt, time_cost=2, memory_cost=19456, parallelism=1, hash_len=32,
                             type=Type.ID).decode()
        lines += [f"    - username: {user}", f"      role: {role}", f"      password_hash: '{hashed}'"]
    return "\n".join(lines) + "\n"


# (机构问题代码, enabled, enabled_from, matter_types, target_date) of the demo's units: two start
# disabled, one with a target date, one enabled for licensing only.
DEMO_UNITS: tuple[tuple[str, bool, str | None, list[str], str | None], ...] = (
    ("SJ", True, "2026-09-01", [], None),
    ("ZJ", True, "2026-09-01", ["01"], "2026-09-30"),  # licensing matters by the end of September
    ("MZ", True, "2026-10-01", [], None),
    ("RS", True, "2026-10-01", [], None),
    ("FG", True, "2026-10-15", [], "2026-10-31"),
    ("HB", False, None, [], "2026-12-31"),
    ("WJ", False, None, [], None),
)


def _units_block() -> str:
    from guidang_demo.catalogue import agency_of

    lines: list[str] = []
    for org, enabled, since, types, target in DEMO_UNITS:
        name, code = agency_of(org)
        lines.append(f"  - name: {name}")
        lines.append(f"    code: {code}")
        lines.append(f"    org_code: {org}")
        lines.append(f"    enabled: {'true' if enabled else 'false'}")
        if since:
            lines.append(f"    enabled_from: {since}")
        if types:
            lines.append(f"    matter_types: [{', '.join(repr(t) for t in types)}]")
        if target:
            lines.append(f"    target_date: {target}")
            if types:
                lines.append(f"    target_matter_types: [{', '.join(repr(t) for t in types)}]")
    return "\n".join(lines) + "\n"
