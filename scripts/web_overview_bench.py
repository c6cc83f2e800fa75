"""Figures, not a test: how long the console takes to serve its 概览 over a 20,000-matter ledger.

Builds a SQLite ledger by bulk insert (rows shaped like a night's: verified matters with sizes over
several units, a share quarantined, some failed runs with a source error), starts the real app under
uvicorn on a free 127.0.0.1 port, signs in over HTTP and times GET / (and a later page of nights)
`--requests` times each. Then drops the overview's covering index and times again, for comparison.

    PYTHONPATH=. .venv/bin/python scripts/web_overview_bench.py [--matters 20000] [--nights 40] [--requests 20]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.models import MatterRecord, QuarantineEntry, Run  # noqa: E402
from ledger.store import Ledger  # noqa: E402

UNITS = ["西湖区市场监督管理局", "西湖区卫生健康局", "西湖区民政局", "西湖区人力资源和社会保障局",
         "西湖区住房和城乡建设局", "西湖区教育局", "西湖区交通运输局", "西湖区综合行政执法局"]
SERVICES = [("330106-XK-0001", "食品经营许可", "01"),
            ("330106-CF-0001", "对未取得食品经营许可从事食品经营活动的处罚", "02"),
            ("330106-QR-0003", "婚姻登记档案查询", "07"), ("330106-GG-0002", "职业技能等级认定", "20")]


def build_ledger(path: Path, matters: int, nights: int) -> None:
    rng = random.Random(13)
    ledger = Ledger(f"sqlite:///{path}")  # migrations to head: the same schema and indexes as a real ledger
    start = datetime(2026, 1, 1, 18, tzinfo=UTC)
    runs, rows, held = [], [], []
    for n in range(nights):
        at = start + timedelta(days=n)
        failed = n % 9 == 4
        runs.append({
            "id": f"run{n:04d}", "started_at": at, "finished_at": at + timedelta(minutes=40),
            "status": "failed" if failed else "completed", "parameters": {"as_of": at.isoformat()},
            "summary": {"sources": {"unified": {"archived": 0}, "sjjc": {"error": "connection refused"} if failed
                                    else {"archived": 0}}},
            "error": "source sjjc failed" if failed else None,
        })
    for i in range(matters):
        n = i * nights // matters
        code, name, kind = SERVICES[i % len(SERVICES)]
        completed = start + timedelta(days=n, hours=-rng.randint(2, 30))
        quarantined = i % 37 == 0
        rows.append({
            "source": "unified" if i % 3 else "sjjc", "project_id": f"3301062026{i:010d}", "version": 1,
            "content_hash": secrets.token_hex(32), "state": "quarantined" if quarantined else "verified",
            "service_code": code, "service_name": name, "matter_type": kind, "agency": UNITS[i % len(UNITS)],
            "title": f"{name}（申请人{i}）", "completed_at": completed, "source_updated_at": completed,
            "fonds": "Z109", "year": 2026, "retention_period": "D30", "category_code": "WS", "org_code": "SJ",
            "item_number": i + 1, "archival_code": f"Z109-WS·2026·D30·SJ-{i + 1:05d}",
            "package_key": f"Z109/2026/D30/Z109-WS·2026·D30·SJ-{i + 1:05d}", "file_count": 5,
            "total_bytes": rng.randint(200_000, 6_000_000), "page_count": 8, "run_id": f"run{n:04d}",
            "numbered_at": completed, "verified_at": completed, "record": {"agency": UNITS[i % len(UNITS)]},
            "appraisal": {},
        })
        if quarantined:
            held.append({"source": rows[-1]["source"], "project_id": rows[-1]["project_id"], "codes": ["Q-PDF-BROKEN"],
                         "findings": [{"code": "Q-PDF-BROKEN", "message": "page tree broken"}],
                         "record": {"agency": UNITS[i % len(UNITS)]}, "run_id": f"run{n:04d}",
                         "created_at": completed, "attempts": 1})
    with ledger.transaction() as s:
        s.execute(insert(Run), runs)
        for k in range(0, len(rows), 2000):
            s.execute(insert(MatterRecord), rows[k:k + 2000])
        s.execute(insert(QuarantineEntry), held)
    with ledger.engine.begin() as c:
        c.exec_driver_sql("ANALYZE")
    ledger.close()


def time_pages(url: str, password: str, requests: int) -> dict[str, list[float]]:
    with httpx.Client(base_url=url, timeout=60) as c:
        import re

        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"username": "bench", "password": password, "csrf": token})
        if r.status_code != 303:
            raise SystemExit(f"sign-in failed: {r.status_code} {r.text}")
        out: dict[str, list[float]] = {}
        for path in ("/", "/?page=2"):
            c.get(path).raise_for_status()  # warm
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                resp = c.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                if resp.status_code != 200 or "夜间归档概览" not in resp.text:
                    raise SystemExit(f"{path}: {resp.status_code}, not the overview page")
            out[path] = times
    return out


def report(label: str, figures: dict[str, list[float]]) -> None:
    for path, times in figures.items():
        times = sorted(times)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"{label:<28} GET {path:<9} median {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms   "
              f"max {times[-1]:7.1f} ms   ({len(times)} requests)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--matters", type=int, default=20_000)
    ap.add_argument("--nights", type=int, default=40)
    ap.add_argument("--requests", type=int, default=20)
    args = ap.parse_args()

    from argon2 import PasswordHasher

    from tests.web_support import serve

    with tempfile.TemporaryDirectory(prefix="guidang-web-bench-") as tmp:
        world = Path(tmp)
        t0 = time.perf_counter()
        build_ledger(world / "ledger.sqlite", args.matters, args.nights)
        print(f"ledger: {args.matters} matters over {args.nights} nights and {len(UNITS)} units, built in "
              f"{time.perf_counter() - t0:.1f} s")
        (world / "archive").mkdir()
        password = secrets.token_urlsafe(12)
        config = {"fonds": [{"code": "Z109", "name": "西湖区"}], "ledger_url": "sqlite:///ledger.sqlite",
                  "repository": {"kind": "fs", "path": "archive"},
                  "sources": [{"name": "unified", "kind": "unified", "base_url": "http://127.0.0.1:1/archive"}],
                  "web": {"secret_key_env": "GUIDANG_BENCH_WEB_KEY",
                          "users": [{"username": "bench", "role": "auditor",
                                     "password_hash": PasswordHasher().hash(password)}]}}
        (world / "guidang.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        os.environ["GUIDANG_BENCH_WEB_KEY"] = secrets.token_hex(32)
        with serve(world) as (url, _):
            report("with ix_matters_run_overview", time_pages(url, password, args.requests))
        ledger = Ledger(f"sqlite:///{world / 'ledger.sqlite'}")
        with ledger.engine.begin() as c:
            c.execute(text("DROP INDEX ix_matters_run_overview"))
            c.execute(text("DROP INDEX ix_quarantine_run_id"))
        ledger.close()
        with serve(world) as (url, _):
            report("without the overview indexes", time_pages(url, password, args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
