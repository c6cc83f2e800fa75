"""`python -m guidang_demo DATA_DIR [--port N]`: serve a unified-system dataset by hand.

The demo world's guidang.yaml points at http://127.0.0.1:8765 unless GUIDANG_UNIFIED_URL says
otherwise (`guidang demo` starts the simulator itself); this is how a person looks at the dataset,
or runs `guidang run` against it, outside `guidang demo`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from guidang_demo.faults import FaultPlan
from guidang_demo.unified_data import MATTERS_FILE, write_unified_dataset
from guidang_demo.unified_simulator import UnifiedSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m guidang_demo",
        description="Serve a unified-system dataset over HTTP (written first if DATA_DIR has none).",
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--count", type=int, default=180)
    parser.add_argument("--flaky", type=float, default=0.0, metavar="SHARE",
                        help="inject 5xx/delays/truncation into this share of requests")
    args = parser.parse_args(argv)
    if not (args.data_dir / MATTERS_FILE).exists():
        summary = write_unified_dataset(args.data_dir, seed=args.seed, count=args.count)
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    faults = FaultPlan.flaky(share=args.flaky) if args.flaky else None
    sim = UnifiedSimulator(args.data_dir, faults=faults, token=args.token)
    try:
        url = sim.start(args.port)
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"serving {args.data_dir} at {url}/api/v1/matters (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
