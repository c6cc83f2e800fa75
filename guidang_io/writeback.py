"""New files and folders written back while a chunk is still making them, from a thread of its own.

Why: on some file systems (the ext4 of this project's virtual machines) creating a file or folder
costs CPU in proportion to the inodes created and not yet written back: about 0.1 ms right after
a sync, 0.5-0.9 ms a thousand creations later, and the kernel writes them back on its own only
after some thirty seconds. A night creates about eighteen a matter (staged documents, package
files, folders, the marker), so on such a disk that alone cost more than hashing the documents
(docs/benchmark.md, "New inodes"). Syncing the file system every `INTERVAL` while a chunk works
keeps every creation near its cheapest. Nothing extra is written: the night makes these bytes
durable before the ledger records them anyway, only later and all at once.

The syncs run on a daemon thread (ctypes lets go of the interpreter's lock during the call), one
per process, only while a `paced` block is open; where syncfs is unusable (not Linux, a kernel
before 5.8) `paced` does nothing.

A sync that reports a write error sees an error the chunk's own durability sync might then not
see (Linux reports a writeback error once to each open file description that was open when it
happened). So the thread keeps one descriptor per file system for the life of the process, opened
before this process's first paced write, and an error it sees is kept: every later
`sync_file_system` of that file system in this process raises it (`failure`).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

INTERVAL = 0.02  # seconds between two syncs of one file system while a paced block is open


@cache
def syncfs_call() -> Callable[[int], int] | None:
    """libc's syncfs where it reports write errors (Linux >= 5.8), else None."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux" or not _kernel_at_least(os.uname().release, (5, 8)):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn  # type: ignore[no-any-return]


def _kernel_at_least(release: str, wanted: tuple[int, int]) -> bool:
    parts = release.split("-", 1)[0].split(".")
    try:
        return (int(parts[0]), int(parts[1])) >= wanted
    except (IndexError, ValueError):
        return False


def syncfs_fd(syncfs: Callable[[int], int], fd: int, where: Path) -> None:
    """One syncfs through `fd`; OSError naming `where` when it reports a write error."""
    if syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}", str(where))


class _Pacer:
    """The process's syncing thread and the file systems it keeps written back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open_blocks: dict[int, int] = {}  # device -> paced blocks open on it
        self.fds: dict[int, tuple[int, Path]] = {}  # device -> (descriptor kept open, a root on it)
        self.failed: dict[int, OSError] = {}  # device -> the first write error a sync reported
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def enter(self, devices: dict[int, Path]) -> None:
        with self.lock:
            for device, root in devices.items():  # every descriptor first: an OSError counts no block
                if device not in self.fds:
                    self.fds[device] = (os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)), root)
            for device in devices:
                self.open_blocks[device] = self.open_blocks.get(device, 0) + 1
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="guidang-writeback", daemon=True)
                self.thread.start()
            self.wake.set()

    def leave(self, devices: Iterable[int]) -> None:
        with self.lock:
            for device in devices:
                left = self.open_blocks.get(device, 0) - 1
                if left > 0:
                    self.open_blocks[device] = left
                else:
                    self.open_blocks.pop(device, None)

    def _run(self) -> None:
        syncfs = syncfs_call()
        while syncfs is not None:
            self.wake.wait()
            with self.lock:
                todo = [(d, *self.fds[d]) for d in self.open_blocks if d not in self.failed]
                if not todo:
                    self.wake.clear()
                    continue
            for device, fd, root in todo:
                try:
                    syncfs_fd(syncfs, fd, root)
                except OSError as exc:
                    with self.lock:
                        self.failed.setdefault(device, exc)
            threading.Event().wait(INTERVAL)


_PACER = _Pacer()


def _after_fork() -> None:
    """A forked child has no syncing thread and must not share its parent's descriptors' error
    state: it starts its own when it first paces."""
    global _PACER
    _PACER = _Pacer()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


@contextmanager
def paced(roots: Iterable[Path]) -> Iterator[None]:
    """Keep the file systems of `roots` written back while the block runs (see the module's
    docstring); a root that does not exist (yet) is left out."""
    if syncfs_call() is None:
        yield
        return
    devices: dict[int, Path] = {}
    for root in roots:
        try:
            devices.setdefault(os.stat(root).st_dev, root)
        except OSError:
            continue
    pacer = _PACER
    try:
        pacer.enter(devices)
    except OSError:  # a root that cannot be opened: its chunk reports that itself
        yield
        return
    try:
        yield
    finally:
        pacer.leave(devices)


def failure(device: int) -> OSError | None:
    """The write error a sync of this process's thread saw on `device`, if any."""
    with _PACER.lock:
        return _PACER.failed.get(device)
