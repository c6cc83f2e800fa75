"""`guidang bench --office`: conversions per second (格式转换). The real night over N matters, each
with one DOCX of about SIZE bytes, every one normalised to a PDF/A-2b rendition by LibreOffice.
A figure, not a test.

The world is the bench's (guidang_demo/bench_world.py, with office documents), served over HTTP
by the unified simulator; the night is `run_nightly` with the world's configuration and the
converter's `max_parallel` set from --parallel.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def bench_office(matters: int, size: int, parallel: int, keep: bool) -> dict[str, Any]:
    """The night's seconds, matters archived, renditions made and conversions per second."""
    from guidang_demo.bench_world import build_bench_world
    from guidang_demo.unified_simulator import UnifiedSimulator
    from night.engine import run_nightly
    from schemas.config import load_settings

    world = Path(tempfile.mkdtemp(prefix="guidang-bench-office-"))
    try:
        built = build_bench_world(world, matters=matters, docs=1, size=size, office=True)
        with (world / "guidang.yaml").open("a", encoding="utf-8") as fh:
            fh.write(f"formats:\n  converter:\n    max_parallel: {parallel}\n")
        sim = UnifiedSimulator(world / "sources" / "unified")
        old = os.environ.get("GUIDANG_UNIFIED_URL")
        os.environ["GUIDANG_UNIFIED_URL"] = sim.start()
        try:
            started = time.monotonic()
            summary = run_nightly(load_settings(world / "guidang.yaml"))
            seconds = time.monotonic() - started
        finally:
            sim.stop()
            if old is None:
                os.environ.pop("GUIDANG_UNIFIED_URL", None)
            else:
                os.environ["GUIDANG_UNIFIED_URL"] = old
        renditions = sum(1 for _ in (world / "archive").rglob("*.docx.pdf"))
        return {
            "matters": matters, "docx_bytes": built["bytes"] // matters, "max_parallel": parallel,
            "cpus": os.cpu_count(), "night_seconds": round(seconds, 2), "archived": summary["totals"]["archived"],
            "renditions": renditions, "conversions_per_second": round(renditions / seconds, 3),
            "world": str(world) if keep else None,
        }
    finally:
        if not keep:
            shutil.rmtree(world, ignore_errors=True)


def office_text(r: dict[str, Any]) -> str:
    return (f"{r['matters']} matters x one DOCX of ~{r['docx_bytes']:,} bytes, max_parallel {r['max_parallel']}, "
            f"{r['cpus']} CPU(s)\n"
            f"night: {r['night_seconds']:.1f} s, {r['archived']} archived, {r['renditions']} rendition(s)\n"
            f"conversions per second: {r['conversions_per_second']:.2f} "
            f"({r['night_seconds'] / max(r['renditions'], 1):.2f} s of night per conversion)")
