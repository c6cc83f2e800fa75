"""A document's bytes kept in memory as they stream past, for inspection without reading it again.

Staging writes each document straight to the medium (guidang_io/direct_io.py), so the page cache has
no copy: reading the staged file back for its format, PRONOM signature and pypdf's walk would fetch
it from the device. Instead the blocks already received are kept, up to `HOLD_LIMIT` bytes, and
inspection reads them; a larger document is inspected from its file, as before. The blocks are the
received ones (no join, no copy), and they are dropped with the staged document's inspection.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

HOLD_LIMIT = 16 * 1024 * 1024  # a worker thread holds at most one document of this size at a time


class Held:
    """Passes blocks through while keeping them; gives up keeping (and frees them) past the limit."""

    def __init__(self, limit: int = HOLD_LIMIT) -> None:
        self.limit = limit
        self.blocks: list[bytes] | None = []
        self.size = 0

    def keep(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        for block in blocks:
            self.size += len(block)
            if self.blocks is not None:
                if self.size > self.limit:
                    self.blocks = None
                else:
                    self.blocks.append(bytes(block) if not isinstance(block, bytes) else block)
            yield block

    def reader(self) -> io.BufferedIOBase | None:
        """A seekable binary reader over the kept bytes; None when the document was too large.
        A document that came in one block (up to a MiB) is read by io.BytesIO, which shares the
        block and serves pypdf's many one-byte reads in C, far faster than a buffered reader over
        the blocks."""
        if self.blocks is None:
            return None
        if len(self.blocks) <= 1:
            return io.BytesIO(self.blocks[0] if self.blocks else b"")
        return io.BufferedReader(_BlocksRaw(self.blocks), buffer_size=64 * 1024)

    def head(self, n: int) -> bytes | None:
        return None if self.blocks is None else self._slice(0, n)

    def tail(self, n: int) -> bytes | None:
        return None if self.blocks is None else self._slice(max(0, self.size - n), self.size)

    def _slice(self, start: int, end: int) -> bytes:
        out, pos = [], 0
        for block in self.blocks or ():
            lo, hi = max(start, pos), min(end, pos + len(block))
            if lo < hi:
                out.append(block[lo - pos:hi - pos] if (lo, hi) != (pos, pos + len(block)) else block)
            pos += len(block)
            if pos >= end:
                break
        return out[0] if len(out) == 1 else b"".join(out)


class _BlocksRaw(io.RawIOBase):
    """A read-only, seekable raw stream over a list of blocks (what pypdf needs of a file)."""

    def __init__(self, blocks: list[bytes]) -> None:
        self._blocks = [memoryview(b) for b in blocks]  # sliced without copying
        self._starts: list[int] = []
        total = 0
        for block in blocks:
            self._starts.append(total)
            total += len(block)
        self._size = total
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET and offset < 0:
            raise ValueError(f"negative seek position {offset}")
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)  # before the start from the end or here: 0, as io.BytesIO does
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out) and self._pos < self._size:
            i = self._block_at(self._pos)
            block, start = self._blocks[i], self._starts[i]
            n = min(len(out) - done, start + len(block) - self._pos)
            out[done:done + n] = block[self._pos - start:self._pos - start + n]
            done += n
            self._pos += n
        return done

    def _block_at(self, pos: int) -> int:
        from bisect import bisect_right

        return bisect_right(self._starts, pos) - 1
