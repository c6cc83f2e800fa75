"""Appraisal throughput: 100,000 matters against a 5,000-rule table; prints matters/s.

A script that prints figures, not a timed test: run it on the machine you care about.
    python scripts/bench_retention.py [--matters N] [--rules N]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta, timezone

from retention import RetentionTable, appraise, load_records
from schemas.model import Applicant, Document, Matter

TYPES = ["01", "02", "05", "06", "07", "10", "11", "12"]
GROUPS = ["申报材料", "过程材料", "结果材料"]


def build_table(n_rules: int, n_codes: int, agencies: list[str]) -> RetentionTable:
    """Mostly 事项编码 rules, some group overrides, type+agency and type rules, one default."""
    rows: list[dict] = [{"归档范围": "归档", "保管期限": "10年", "依据": "兜底"}]
    for t in TYPES:
        rows.append({"事项类型": t, "归档范围": "归档", "保管期限": "30年"})
        for a in agencies[:5]:
            rows.append({"事项类型": t, "实施机构": a, "归档范围": "归档", "保管期限": "永久", "机构问题代码": "JG"})
    i = 0
    periods = ["永久", "30年", "10年"]
    while len(rows) < n_rules:
        code = f"330106-BM-{i:05d}"
        if i % 10 == 3:
            rows.append({"事项编码": code, "材料类别": "过程", "归档范围": "不归档"})
        elif i % 10 == 7:
            rows.append({"事项编码": code, "材料类别": "结果", "归档范围": "归档", "保管期限": "永久"})
        else:
            rows.append({"事项编码": code, "归档范围": "归档", "保管期限": periods[i % 3], "生效日期": "2020-01-01"})
        i = (i + 1) % n_codes
    result = load_records(rows, source="bench")
    if result.errors:
        raise SystemExit(f"bench table invalid: {result.errors[0]}")
    return result.table


def build_matters(n: int, n_codes: int, agencies: list[str], seed: int = 7) -> list[Matter]:
    rnd = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8)))
    matters = []
    for k in range(n):
        # a share of matters has no 事项编码 rule, so the type and default levels are exercised too
        code = f"330106-BM-{rnd.randrange(int(n_codes * 1.2)):05d}"
        completed = base + timedelta(minutes=rnd.randrange(500_000))
        groups = rnd.sample(GROUPS, rnd.randint(1, 3))
        matters.append(
            Matter.model_construct(
                source="bench",
                project_id=f"P{k:07d}",
                service_code=code,
                service_name="x",
                matter_type=rnd.choice(TYPES),
                agency=rnd.choice(agencies),
                applicant=Applicant.model_construct(name="x"),
                steps=[],  # explicit: pydantic inspects a default_factory on every construct
                completed_at=completed,
                updated_at=completed,
                documents=[
                    Document.model_construct(group=g, title="t", file_name=f"{j}.pdf", locator="l")
                    for j, g in enumerate(groups)
                ],
            )
        )
    return matters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matters", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=5_000)
    args = parser.parse_args()
    agencies = [f"西湖区机构{k:02d}" for k in range(40)]
    n_codes = max(1, args.rules - 50)

    t0 = time.perf_counter()
    table = build_table(args.rules, n_codes, agencies)
    t1 = time.perf_counter()
    matters = build_matters(args.matters, n_codes, agencies)
    t2 = time.perf_counter()
    _ = table.index  # built once per table; timed separately
    t3 = time.perf_counter()
    counts = {"in_scope": 0, "out_of_scope": 0, "no_rule": 0}
    for m in matters:
        a = appraise(table, m)
        counts["in_scope" if a.in_scope else "out_of_scope"] += 1
    t4 = time.perf_counter()

    print(f"rules:          {len(table.rules):,} (loaded and validated in {t1 - t0:.2f} s)")
    print(f"matters:        {len(matters):,} (generated in {t2 - t1:.2f} s)")
    print(f"index build:    {(t3 - t2) * 1000:.1f} ms")
    print(f"appraisal:      {t4 - t3:.2f} s, {len(matters) / (t4 - t3):,.0f} matters/s")
    print(f"outcomes:       {counts}")


if __name__ == "__main__":
    main()
