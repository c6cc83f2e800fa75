"""The memory `guidang bench` reports for a night is the night's own: the summed PSS of the night's
process tree, not the high-water mark Linux lets a child inherit from the process that started it
(the bench builds its world in memory first: a 50,000-matter world's bench reported its own peak)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from guidang_bench.memory import run_measured

MB = 1024 * 1024
CHILD = "import time; x = bytearray(40 * 1024 * 1024); x[::4096] = b'\\1' * len(x[::4096]); time.sleep(1.5)"


def test_a_child_s_peak_is_its_own_not_that_of_the_process_that_started_it(tmp_path: Path) -> None:
    ballast = bytearray(300 * MB)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # resident in this process before the child starts
    with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
        code, seconds, peak = run_measured([sys.executable, "-c", CHILD], stdout=out, stderr=err,
                                           env=os.environ, cwd=tmp_path)
    assert code == 0 and seconds >= 1.5, (tmp_path / "err").read_text()
    assert 40 * MB <= peak < 150 * MB, f"{peak / MB:.0f} MB reported for a child of about 50 MB"
    assert len(ballast) == 300 * MB
