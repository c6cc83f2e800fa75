"""`guidang bench --growth SMALL,LARGE`: whether a night's memory stays flat as its window grows.

A night that held something per matter (a list of every matter's facts, a cache never trimmed)
would pass a 200-matter bench and fail a province's night. So the same kind of world is built at two
sizes (one document of `size` bytes a matter, the shape a memory test needs: many matters, little
data) and the real night runs over each as a child process; the peak of the summed PSS of its
process tree (guidang_bench/memory.py) is read at both, and the difference divided by the matters
between them is the memory the night keeps per matter. Fixed costs (interpreter, imports, workers,
one slice's documents) cancel out in the difference.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from guidang_bench.timing import MB, BenchFailed, Say, check_night, run_night, start_simulator, stop_process
from guidang_demo.bench_world import build_bench_world

GROWTH_LIMIT_KB = 2.0  # per matter, between the two sizes


def measure_growth(work_dir: Path, sizes: tuple[int, int], *, size: int, say: Say) -> dict[str, Any]:
    """Two nights, `sizes[0]` and `sizes[1]` matters, each in its own world under `work_dir`; returns the
    figures (`nights` with each one's matters, seconds and peak PSS, `growth_kb_per_matter`, `target`)."""
    small, large = sizes
    if not 0 < small < large:
        raise BenchFailed(f"--growth {small},{large}: the second size must be larger than the first")
    nights = []
    for matters in sizes:
        world_dir = work_dir / f"growth-{matters}"
        say(f"growth: generating {matters} matters x 1 document of about {size:,} bytes")
        world = build_bench_world(world_dir, matters=matters, docs=1, size=size)
        logs = world_dir / "bench-logs"
        logs.mkdir()
        simulator, url = start_simulator(world_dir / "sources" / "unified", logs / "simulator.log")
        try:
            say(f"growth: the night over {matters} matters")
            night = run_night(Path(world["config"]), orchestrator="local", as_of=f"{world['until']}T00:00:00+08:00",
                              unified_url=url, log_dir=logs)
            check_night(night, matters)
        finally:
            stop_process(simulator)
        nights.append({"matters": matters, "night_seconds": round(night.night_seconds, 1),
                       "peak_pss_mb": round(night.peak_rss_mb, 1)})
        shutil.rmtree(world_dir / "archive", ignore_errors=True)  # the next world's night starts on a calm disk
    growth = (nights[1]["peak_pss_mb"] - nights[0]["peak_pss_mb"]) * MB / 1000 / (large - small)
    return {
        "growth_nights": nights,
        "growth_kb_per_matter": round(growth, 2),
        "growth_target": {"target": f"< {GROWTH_LIMIT_KB:.0f} KB of peak PSS per matter between {small:,} and "
                          f"{large:,} matters (stated between 5,000 and 50,000)", "value": round(growth, 2),
                          "met": growth < GROWTH_LIMIT_KB, "applies": small <= 5_000 and large >= 50_000},
    }


def growth_text(f: dict[str, Any]) -> str:
    lines = ["memory as the window grows (one document a matter; peak PSS of the night's process tree):"]
    lines += [f"  {n['matters']:>7,} matters: {n['peak_pss_mb']:>7.1f} MB peak, night {n['night_seconds']:.1f} s"
              for n in f["growth_nights"]]
    t = f["growth_target"]
    scope = "" if t["applies"] else "  (not this target's stated sizes)"
    met = "met" if t["met"] else "MISSED"
    lines.append(f"  growth {f['growth_kb_per_matter']:.2f} KB per matter; {met}: {t['target']}{scope}")
    return "\n".join(lines)
