"""Reading documents in blocks: each process's heap tuned for them, and a stored file's digests read
from the medium itself (O_DIRECT, guidang_io/direct_io.py) rather than from the page cache.

The recipes (SM3 and SHA-256 in one pass, `BLOCK_SIZE`) are schemas/digest.py's; this module is
where they meet the disk and the process's memory.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from guidang_io.direct_io import read_blocks
from schemas.digest import BLOCK_SIZE, Digests, digest_chunks

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache  # once a process: every night and worker context asks, and forks inherit it
def keep_blocks_on_the_heap() -> bool:
    """Have glibc serve BLOCK_SIZE buffers from its heap, reused from one read to the next.

    Every document is read in blocks of a MiB (received, read back, parsed), each a fresh bytes
    object. glibc maps an allocation that large anew each time (its threshold adapts, then trims
    the heap back), so every block read pays page faults for fresh pages. With a fixed threshold
    of two blocks, and the heap trimmed only above eight (at most eight blocks kept per process), a
    process's reads reuse the same pages (docs/benchmark.md has the figures).
    Larger allocations (a big PDF's stream) are still
    mapped and returned. Where malloc is not glibc's, nothing changes (False)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 2 * BLOCK_SIZE)) and bool(mallopt(_M_TRIM_THRESHOLD, 8 * BLOCK_SIZE))


def digest_file(path: Path) -> Digests:
    """SM3 and SHA-256 of a stored file as the medium holds it (`guidang check`, the fixity audit):
    read directly, so that auditing an archive neither trusts nor floods the page cache."""
    return digest_chunks(read_blocks(path))


def sha256_file(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size) of a file as the medium holds it (guidang_io/direct_io.py): the read-back
    of a stored copy, which needs no SM3 (the document's SM3 was computed on arrival, and equal
    SHA-256 means equal bytes)."""
    h = hashlib.sha256()
    size = 0
    for block in read_blocks(path):
        h.update(block)
        size += len(block)
    return h.hexdigest(), size
