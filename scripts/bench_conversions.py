"""Conversions per second (格式转换): the real night over N matters, each with one DOCX of about
SIZE bytes, every one normalised to a PDF/A-2b rendition by LibreOffice. A figure, not a test.

    .venv/bin/python scripts/bench_conversions.py                  # 100 matters x one 100 KB DOCX
    .venv/bin/python scripts/bench_conversions.py --matters 20 --parallel 4

The world is `guidang bench`'s (guidang_demo/bench_world.py, with office documents), served over
HTTP by the unified simulator; the night is `run_nightly` with the world's configuration and the
converter's `max_parallel` set from --parallel. Prints the night's seconds, the renditions it
archived and the conversions per second; exit 1 when a matter was not archived.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matters", type=int, default=100)
    parser.add_argument("--size", type=int, default=100_000, help="bytes per DOCX (about)")
    parser.add_argument("--parallel", type=int, default=2, help="formats.converter.max_parallel")
    parser.add_argument("--keep", action="store_true", help="keep the world afterwards")
    args = parser.parse_args()

    from flows.night import run_nightly
    from guidang_demo.bench_world import build_bench_world
    from guidang_demo.unified import UnifiedSimulator
    from schemas.config import load_settings

    world = Path(tempfile.mkdtemp(prefix="guidang-bench-conv-"))
    try:
        built = build_bench_world(world, matters=args.matters, docs=1, size=args.size, office=True)
        with (world / "guidang.yaml").open("a", encoding="utf-8") as fh:
            fh.write(f"formats:\n  converter:\n    max_parallel: {args.parallel}\n")
        sim = UnifiedSimulator(world / "sources" / "unified")
        os.environ["GUIDANG_UNIFIED_URL"] = sim.start()
        try:
            started = time.monotonic()
            summary = run_nightly(load_settings(world / "guidang.yaml"))
            seconds = time.monotonic() - started
        finally:
            sim.stop()
        renditions = sum(1 for _ in (world / "archive").rglob("*.docx.pdf"))
        archived = summary["totals"]["archived"]
        print(f"{args.matters} matters x one DOCX of ~{built['bytes'] // args.matters:,} bytes, "
              f"max_parallel {args.parallel}, {os.cpu_count()} CPU(s)")
        print(f"night: {seconds:.1f} s, {archived} archived, {renditions} rendition(s)")
        print(f"conversions per second: {renditions / seconds:.2f} "
              f"({seconds / max(renditions, 1):.2f} s of night per conversion)")
        return 0 if archived == args.matters == renditions else 1
    finally:
        if args.keep:
            print(f"kept: {world}", file=sys.stderr)
        else:
            shutil.rmtree(world, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
