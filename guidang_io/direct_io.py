"""Document bytes written to and read back from the medium itself (O_DIRECT), not the page cache.

Why: a document is written once, verified once and then not read again for years. Through the page
cache every megabyte of it is first copied into fresh cache pages, which on virtual machines whose
idle memory goes back to the host can cost more CPU than SM3 takes to hash it, and the read-back
that is meant to verify the stored copy only re-reads that cache. Written with O_DIRECT the bytes
go from the process's buffer to the device at a small fraction of that cost, and the verifying
read-back reads what the device holds (docs/benchmark.md has the figures).

Durability is unchanged: O_DIRECT does not flush the device's cache nor the file's metadata, so the
fsync / syncfs the crash order asks for still runs before the ledger records the file.

Only files of DIRECT_MIN bytes and more go past the cache: for a small file (a 元数据.xml, a 100 KB
scan) the device's round trip for every direct write and read costs more than the copy it saves.

Where the file system refuses O_DIRECT (tmpfs, some network and FUSE mounts) both directions fall
back to ordinary buffered I/O, silently: the bytes and digests are the same either way.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from schemas.errors import InvariantBroken

ALIGN = 4096  # offsets, lengths and buffer addresses of O_DIRECT I/O: covers 512- and 4096-byte devices
BUFFER = 1024 * 1024  # one aligned buffer per thread and direction, reused for every file
DIRECT_MIN = 256 * 1024  # smaller files are written and read through the page cache
_O_DIRECT = getattr(os, "O_DIRECT", 0)  # 0 where the platform has none (macOS): always buffered
_REFUSED = {errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP}
_local = threading.local()


def _buffer(name: str) -> mmap.mmap:
    """This thread's page-aligned buffer (anonymous mmap memory is page-aligned)."""
    buf = getattr(_local, name, None)
    if buf is None:
        buf = mmap.mmap(-1, BUFFER)
        setattr(_local, name, buf)
    return buf


class DirectWriter:
    """A new file (created exclusively, like open(path, "xb")) written through O_DIRECT.

    Bytes are gathered into the aligned buffer and written a megabyte at a time (a file that ends
    under DIRECT_MIN before its first megabyte is written buffered, whole); the last partial
    block (under ALIGN bytes) goes through the page cache. Not padded and truncated: cutting the
    padding off makes ext4 read that block back from the disk to zero its tail, a synchronous read
    per document. If the file system refuses O_DIRECT, at open or at the first write, the rest is
    written buffered."""

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self.direct = bool(_O_DIRECT)
        try:
            self._fd = os.open(path, flags | _O_DIRECT, 0o644)
        except OSError as exc:
            if not self.direct or exc.errno not in _REFUSED:
                raise
            self.direct = False
            self._fd = os.open(path, flags, 0o644)
        self._buf = _buffer("write") if self.direct else None
        self._fill = 0
        self._written = 0  # bytes handed to the file so far
        self.direct_bytes = 0  # of which past the page cache
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        if self._buf is None:
            self._write_all(memoryview(data))
            self.size += len(data)
            return
        view = memoryview(data)
        while view:
            n = min(len(view), BUFFER - self._fill)
            self._buf[self._fill:self._fill + n] = view[:n]
            self._fill += n
            view = view[n:]
            if self._fill == BUFFER:
                self._flush(BUFFER)
                self._fill = 0
        self.size += len(data)

    def _flush(self, length: int) -> None:
        """Write the buffer's first `length` bytes (a multiple of ALIGN) at the file's offset."""
        if self._buf is None:
            raise InvariantBroken("direct write buffer flushed after close")
        try:
            self._write_all(memoryview(self._buf)[:length])
        except OSError as exc:
            if exc.errno not in _REFUSED or self._written or not self.direct:
                raise
            # refused at the first write (alignment the device does not take): buffered from here
            self._drop_direct()
            self._write_all(memoryview(self._buf)[:length])

    def _drop_direct(self) -> None:
        self.direct = _buffered(self._fd)

    def _write_all(self, view: memoryview) -> None:
        while view:
            n = os.write(self._fd, view)
            if n <= 0:
                raise OSError(errno.EIO, "write returned no progress")
            if self.direct:
                self.direct_bytes += n
                if n % ALIGN:  # an unaligned short write would leave the rest unwritable
                    self._drop_direct()
            self._written += n
            view = view[n:]

    def close(self) -> None:
        try:
            if self._buf is not None and self._fill:
                small = not self._written and self._fill < DIRECT_MIN  # all of it buffered, whole
                whole = 0 if small else self._fill - self._fill % ALIGN
                if whole:
                    self._flush(whole)
                if self._fill > whole:
                    if self.direct:
                        self._drop_direct()
                    self._write_all(memoryview(self._buf)[whole:self._fill])
        finally:
            os.close(self._fd)

    def __enter__(self) -> DirectWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the stream or a write failed: the caller removes the file, nothing more is written
            os.close(self._fd)


def read_blocks(path: Path) -> Iterator[memoryview]:
    """The file's bytes as the device holds them, a block at a time (O_DIRECT for a file of
    DIRECT_MIN bytes and more, else buffered), through one descriptor.

    Each block is a view of this thread's reused buffer, valid until the next one is asked for:
    hash it, don't keep it. Dirty cached pages of the file are written out by the kernel before a
    direct read, so what is read is what the file holds."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    direct = bool(_O_DIRECT)
    try:
        fd = os.open(path, flags | _O_DIRECT)
    except OSError as exc:
        if not direct or exc.errno not in _REFUSED:
            raise
        direct, fd = False, os.open(path, flags)
    try:
        if direct and os.fstat(fd).st_size < DIRECT_MIN:  # small: the cache is cheaper (module docstring)
            direct = _buffered(fd)
        buf = _buffer("read")
        while True:
            try:
                n = os.readv(fd, [buf])
            except OSError as exc:
                if not direct or exc.errno not in _REFUSED or os.lseek(fd, 0, os.SEEK_CUR):
                    raise
                direct = _buffered(fd)  # refused at the first read: buffered instead
                continue
            if n <= 0:
                return
            yield memoryview(buf)[:n]
            if direct and n % ALIGN:  # a short direct read ends at the file's end
                return
    finally:
        os.close(fd)


def _buffered(fd: int) -> bool:
    """Take O_DIRECT off an open descriptor; returns False (the descriptor's new mode)."""
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_O_DIRECT)
    return False
