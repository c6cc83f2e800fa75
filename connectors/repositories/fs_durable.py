"""Making a chunk's staged files durable at once, for the filesystem repository's linked puts (and
its plain walks of the folders).

A put that hard-links a staged file into the archive must first know the file's bytes are on disk:
otherwise a crash could leave an archive name pointing at a file the journal never saw written
(ext4 then shows it empty), and the next run would meet a conflict it may not overwrite. One fsync
per file did that: eight a matter (five documents, 元数据, two manifests, 检测报告), each a journal
commit, which also stalled the other workers' file creations while it ran.

`Settled.settle` makes all the files a chunk is about to hand over read-only and durable with one
syncfs(2) of the archive's file system, and remembers each file's identity (device, inode, size,
modification and change times, taken before the sync). A put whose file still has that identity
needs no fsync of its own; a file anything wrote to since has another identity and is fsynced as
before. The put's read-back still compares every byte with the packager's digest.

syncfs reports a write error only from Linux 5.8 on. On an older kernel, another system or a libc
without it, nothing is settled and every put fsyncs its own file, as it always did.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import BinaryIO

from schemas.digest import iter_file

log = logging.getLogger("connectors.repositories.fs")

Identity = tuple[int, int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _kernel_at_least(release: str, wanted: tuple[int, int]) -> bool:
    m = re.match(r"(\d+)\.(\d+)", release)
    return m is not None and (int(m.group(1)), int(m.group(2))) >= wanted


@cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's syncfs where it reports write errors (Linux >= 5.8), else None."""
    if sys.platform != "linux" or not _kernel_at_least(os.uname().release, (5, 8)):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn  # type: ignore[no-any-return]


def sync_file_system(syncfs: Callable[[int], int], root: Path) -> None:
    """One syncfs of the file system `root` lies on; OSError when it reports a write error."""
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(root))
    finally:
        os.close(fd)


class Settled:
    """Identities of files made durable by `settle`, each good for one put (`take`) in the same
    thread (a chunk is settled and stored by one thread). A thread's next `settle` forgets what its
    last one left untaken (a put that failed, a key found stored already), so an identity never
    outlives its chunk and a later file that happens to reuse the inode is not taken for it."""

    def __init__(self) -> None:
        self._local = threading.local()

    def settle(self, root: Path, paths: Iterable[Path], mode: int) -> int:
        """Give the regular files among `paths` that lie on `root`'s file system `mode`, then make
        them durable with one syncfs; returns how many were settled (0 where syncfs is unusable).
        A file that cannot be reached is left to its put, which reports it."""
        self._local.known = set()
        syncfs = _syncfs()
        if syncfs is None:
            return 0
        device = root.stat().st_dev
        seen: list[Identity] = []
        for path in paths:
            try:
                st = os.lstat(path)
                if st.st_dev != device or not stat.S_ISREG(st.st_mode):
                    continue
                os.chmod(path, mode)
                seen.append(identity(os.lstat(path)))  # before the sync: a later write changes it
            except OSError:
                continue
        if not seen:
            return 0
        sync_file_system(syncfs, root)
        self._local.known = set(seen)
        return len(seen)

    def take(self, st: os.stat_result) -> bool:
        """Whether this thread settled the file with this stat and it has not changed since (then
        forgotten)."""
        known: set[Identity] | None = getattr(self._local, "known", None)
        key = identity(st)
        if known is None or key not in known:
            return False
        known.discard(key)
        return True


class PendingFolders:
    """Folders whose fsync a `batch()` defers to its end, per thread: a chunk's packages share a
    few folders, and their new entries (links, subfolders) need be durable only when the block ends.

    At the end, where syncfs is usable (see `_syncfs`), the folders on the archive's own file system
    are made durable by one syncfs of it instead of one fsync each: a chunk of packages touches
    several folders per package, and each fsync is a cache flush of the disk, where one syncfs is
    one flush for them all. A
    folder on another file system (a volume mounted inside the archive) is still fsynced by itself."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._local = threading.local()

    def deferred(self) -> set[Path] | None:
        """The running block's folders (None outside a block: sync at once)."""
        return getattr(self._local, "folders", None)

    @contextmanager
    def batch(self) -> Iterator[None]:
        if self.deferred() is not None:  # nested: the outer block syncs
            yield
            return
        self._local.folders = folders = set()
        try:
            yield
        finally:  # also after a failed put: a folder made here is never made (and its parent synced) again
            self._local.folders = None
            for folder in sorted(self._beyond_one_sync(folders), key=lambda f: len(f.parts), reverse=True):
                self.sync(folder)  # children first

    def _beyond_one_sync(self, folders: set[Path]) -> list[Path]:
        """Sync the folders that lie on the root's file system with one syncfs, and return the others
        (all of them where syncfs is unusable or fails: they are then fsynced one by one)."""
        syncfs = _syncfs()
        if not folders or syncfs is None:
            return list(folders)
        try:
            device = os.stat(self.root).st_dev
            here = {f for f in folders if os.stat(f).st_dev == device}
            sync_file_system(syncfs, self.root)
        except OSError:
            return list(folders)
        return [f for f in folders if f not in here]

    def sync(self, folder: Path) -> None:
        pending = self.deferred()
        if pending is not None:
            pending.add(folder)
            return
        try:
            fsync_dir(folder)
        except OSError as exc:
            log.warning("could not fsync folder %s: %s", folder, exc)


SENDFILE_BLOCK = 64 * 1024 * 1024


def copy_into(content: BinaryIO | bytes, out: BinaryIO) -> None:
    """Write bytes, or copy an open file in the kernel (`sendfile`) when the platform allows it: the
    repository's copying put (a staged file it cannot link), whose bytes need not pass through Python."""
    if isinstance(content, bytes):
        out.write(content)
        out.flush()
        return
    out.flush()
    src, dst, offset = content.fileno(), out.fileno(), 0
    try:
        while sent := os.sendfile(dst, src, offset, SENDFILE_BLOCK):
            offset += sent
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
            raise
        content.seek(0)
        for chunk in iter_file(content):  # a file system without sendfile: through Python, once
            out.write(chunk)
        out.flush()


def sweep_leftovers(root: Path, prefix: str, older_than_seconds: float) -> list[str]:
    """Remove the files under `root` whose names start with `prefix` and that are older than
    `older_than_seconds`; their paths relative to `root`, sorted. An OSError names its file."""
    cutoff = time.time() - older_than_seconds
    removed: list[str] = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if not name.startswith(prefix):
                continue
            full = Path(dirpath, name)
            try:
                if full.lstat().st_mtime > cutoff:
                    continue
                full.unlink()
            except FileNotFoundError:
                continue
            removed.append(full.relative_to(root).as_posix())
    return sorted(removed)


def files_under(root: Path, start: Path, prefix: str, temp_prefix: str) -> list[tuple[str, int]]:
    """(key, size) of the regular files under `start` whose key (the path below `root`) starts with
    `prefix`, sorted; links and temporary leftovers are never listed."""
    found: list[tuple[str, int]] = []
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = [d for d in dirnames if not d.startswith(temp_prefix)]
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            key = name if rel_dir == "." else f"{rel_dir}/{name}"
            if name.startswith(temp_prefix) or not key.startswith(prefix):
                continue
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode):
                found.append((key, st.st_size))
    found.sort()
    return found
