"""`guidang bench --profile` runs a real night under the profilers and says where its CPU went.

Run as a user runs it (a subprocess building its own world, simulator and nights); the figures are
checked for sense (the split adds up to the night's CPU, hashing and pypdf are there because every
document was hashed and parsed), never for speed. The attribution rules are checked on a profile
of known shape.
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import os
import pstats
import subprocess
import sys
from pathlib import Path

from guidang_bench.cpu_profile import attribute, category_of

ROOT = Path(__file__).resolve().parent.parent
BATCH_AND_CHECKPOINT = ("transfers", "checkpoints")


def test_the_profile_splits_a_small_night_and_adds_up(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GUIDANG_UNIFIED_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "bench", "--profile", "--matters", "4", "--docs", "2", "--size", "20000",
         "--json", "--keep", "--dir", str(tmp_path / "w"), "--pstats", str(tmp_path / "night.prof")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    split = result["split"]
    assert result["cpu_seconds"] > 0 and result["profiled_cpu_seconds"] > 0
    assert split["required"]["SM3+SHA-256 hashing"] > 0 and split["required"]["PDF inspection (pypdf)"] > 0
    parts = sum(split["required"].values()) + sum(split["rest"].values())
    assert abs(parts - split["cpu_ms_per_matter"]) < 0.05 * split["cpu_ms_per_matter"]
    assert "ledger (SQL, events)" in split["rest"] and "HTTP (source)" in split["rest"]
    assert pstats.Stats(str(tmp_path / "night.prof")).total_calls > 0  # type: ignore[attr-defined]
    # both nights archived the same packages byte for byte (the profile does not change what is
    # written); a batch's files and the checkpoint carry the run's own id and times
    trees = [sorted((p.relative_to(a).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                    for p in a.rglob("*") if p.is_file() and p.relative_to(a).parts[0] not in BATCH_AND_CHECKPOINT)
             for a in (tmp_path / "w" / "profiled" / "archive", tmp_path / "w" / "plain" / "archive")]
    assert trees[0] and trees[0] == trees[1]


def _burn_hash() -> None:
    for _ in range(200):
        hashlib.sha256(b"x" * 100_000).digest()


def _unnamed_helper() -> None:
    _burn_hash()
    sum(i * i for i in range(20_000))


def test_time_of_an_unnamed_frame_goes_to_its_caller_s_subsystem() -> None:
    profile = cProfile.Profile()
    profile.enable()
    _unnamed_helper()
    profile.disable()
    by = attribute(pstats.Stats(profile))
    assert by.get("SM3+SHA-256 hashing", 0) > 0  # the hashlib calls, by their own rule
    assert category_of((__file__, 1, "_unnamed_helper")) is None
    assert category_of(("~", 0, "<method 'update' of '_hashlib.HASH' objects>")) == "SM3+SHA-256 hashing"
    assert category_of(("/x/site-packages/pypdf/_reader.py", 1, "read")) == "PDF inspection (pypdf)"
    assert category_of(("/x/packager/format_id.py", 1, "match")) == "PRONOM identification"
