"""Documents are read in blocks of a MiB; on glibc each fresh block used to be mapped anew and
faulted in page by page (guidang_io/block_reads.keep_blocks_on_the_heap)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

READER = """
import resource, sys
from pathlib import Path
from guidang_io.block_reads import keep_blocks_on_the_heap
from schemas.digest import iter_file
def read_through():  # fresh bytes objects a block each, as documents arrive over HTTP
    with Path(sys.argv[1]).open("rb") as fh:
        for _ in iter_file(fh):
            pass
if sys.argv[2] == "heap" and not keep_blocks_on_the_heap():
    print("unsupported"); raise SystemExit
read_through()  # the first pass sets the heap up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    read_through()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(path: Path, mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", READER, str(path), mode], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_reading_a_document_in_blocks_reuses_the_same_memory(tmp_path: Path) -> None:
    import pytest

    document = tmp_path / "scan.pdf"
    document.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * (40 * 4096))  # 40 MiB, read 5 times below
    on_heap = _faults(document, "heap")
    if on_heap == "unsupported":
        pytest.skip("malloc is not glibc's")
    mb_read = 5 * document.stat().st_size / 1e6
    assert int(on_heap) / mb_read < 1, f"{on_heap} page faults reading {mb_read:.0f} MB"  # default malloc: 11-214 a MB
