"""The embedded archive repository: a folder on a (local or mounted) filesystem.

Only verified bytes ever get a final name, and no name is ever given twice. There are two ways in:

- A staged file handed over (`put_file(consume=True)`) on the archive's own file system is made
  read-only and durable (with its chunk's one syncfs, `make_durable`, or an fsync of its own),
  read back once and compared with the packager's SHA-256, then hard-linked to its final name:
  its bytes are written to disk once and never copied.
- Anything else (bytes, another file system, a mount without hard links) is written to a
  temporary name in the target folder (a file is copied by the kernel, `sendfile`), fsynced,
  read back and compared, made read-only, hard-linked to its final name, and the temporary
  name unlinked. A write damaged on its way to the disk is retried, not left in the archive
  where nothing may overwrite it.

`os.link` fails when the final name exists, so "create if absent" is atomic even against a
concurrent writer of the same key, where `os.replace` would silently replace whatever that
writer had just put there. Where the filesystem cannot hard-link (some SMB/FUSE mounts) we fall
back to check-then-rename and log that the race window exists. A crash at any point leaves either
nothing, or a complete read-only file plus a temporary leftover that `list`/`exists` ignore and
`sweep_temporary` removes.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from connectors.repositories.base import (
    RepositoryError,
    StoredObject,
    VerificationFailed,
    check_key,
    check_list_prefix,
    conflict,
    not_found,
    repository_error,
    source_changed,
    unreadable_source,
)
from connectors.repositories.disposal import FsDisposal
from connectors.repositories.fs_durable import (
    PendingFolders,
    Settled,
    copy_into,
    files_under,
    fsync_dir,
    sweep_leftovers,
)
from guidang_io.block_reads import sha256_file
from guidang_io.crashpoints import crashpoint
from schemas.digest import iter_file, sha256_bytes

log = logging.getLogger(__name__)

# Temporary names start with this; a key segment that does too is refused, so the two never meet.
TEMP_PREFIX = ".guidang-tmp-"
READ_ONLY = 0o444
_NO_HARDLINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_FULL = {errno.ENOSPC, errno.EDQUOT}


class FilesystemRepository(FsDisposal):
    """Archive objects as read-only files under `root`; see the module docstring for the write order.

    `retain_until` and `legal_hold` are accepted for interface parity with S3 and otherwise ignored:
    a plain filesystem has no retention lock, read-only files are what it offers.
    """

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self._settled = Settled()  # staged files made durable ahead of their puts (make_durable)
        # A missing root is an error by default: an unmounted archive volume must not silently
        # turn into a fresh folder on the system disk.
        self.root = Path(root).absolute()
        self._root_text = str(self.root).rstrip("/")  # "" for the file system's root
        self._folders = PendingFolders(self.root)  # folders whose fsync a `batch()` of this thread defers
        if create and not self.root.exists():
            try:
                self.root.mkdir(parents=True)
            except OSError as exc:
                raise self._os_error(exc, str(self.root), "cannot create archive root") from exc
        if not self.root.is_dir():
            raise repository_error(RepositoryError, "REPO-ROOT-MISSING", str(self.root),
                                   "archive root does not exist or is not a folder (is the volume mounted?)")

    def __repr__(self) -> str:
        return f"FilesystemRepository({str(self.root)!r})"

    # -- keys -----------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The key's file, refused when a part below the root is a symbolic link (a link planted in the
        archive would serve or receive a file outside it); walked on strings up to the first absent
        part, as pathlib's objects cost several times the `lstat` itself."""
        check_key(key)
        parts = key.split("/")
        if any(part.startswith(TEMP_PREFIX) for part in parts):
            raise repository_error(RepositoryError, "REPO-UNSAFE-KEY", repr(key),
                                   f"names starting with {TEMP_PREFIX!r} are reserved for temporary files")
        path = self._root_text
        for depth, name in enumerate(parts, start=1):
            path = f"{path}/{name}"
            try:
                mode = os.lstat(path).st_mode
            except OSError:  # absent (or unreadable: the operation itself then says so)
                break
            if stat.S_ISLNK(mode):
                raise repository_error(RepositoryError, "REPO-LINK", key, f"{'/'.join(parts[:depth])}"
                                       " is a symbolic link; the archive never follows one")
        return self.root / key

    def _os_error(self, exc: OSError, where: str, action: str) -> RepositoryError:
        if exc.errno in _NOT_WRITABLE:
            return repository_error(RepositoryError, "REPO-NOT-WRITABLE", where,
                                    f"{action}: {exc.strerror} (archive root {self.root} read-only or not "
                                    "writable by this user?)", errno=exc.errno)
        if exc.errno in _FULL:
            return repository_error(RepositoryError, "REPO-FULL", where, f"{action}: {exc.strerror} (the file "
                                    f"system of archive root {self.root} is full)", errno=exc.errno)
        return repository_error(RepositoryError, "REPO-IO", where, f"{action}: {exc.strerror or exc}",
                                errno=exc.errno)

    # -- reading --------------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def head(self, key: str) -> StoredObject | None:
        """The stored object with its SHA-256 computed now (one full read: a filesystem keeps no checksum)."""
        return self._stored(key, self._path(key))

    def _stored(self, key: str, path: Path) -> StoredObject | None:
        if not path.is_file():
            return None
        sha256, size = self._read_back(path)
        return StoredObject(key, size, sha256)

    def open(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:  # O_NOFOLLOW as well: a link swapped in after the check is refused by the kernel
            fh = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)), "rb")
        except FileNotFoundError:
            raise not_found(key) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise repository_error(RepositoryError, "REPO-LINK", key, "is a symbolic link; the archive "
                                       "never follows one") from exc
            raise self._os_error(exc, key, "cannot open") from exc
        return self._blocks(fh)

    @staticmethod
    def _blocks(fh: BinaryIO) -> Iterator[bytes]:
        with fh:
            yield from iter_file(fh)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Objects whose key starts with `prefix` (a string prefix, as in S3), sorted; sha256 is None.

        Checksums are not computed here (that would read the whole archive); use `head` or `verify`.
        """
        folder_part = check_list_prefix(prefix)
        start = self.root.joinpath(*folder_part.split("/")) if folder_part else self.root
        yield from (StoredObject(key, size, None) for key, size in files_under(self.root, start, prefix, TEMP_PREFIX))

    def verify(self, key: str, sha256: str) -> StoredObject:
        stored = self._stored(key, self._path(key))
        if stored is None:
            raise not_found(key)
        if stored.sha256 != sha256.lower():
            raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                   f"stored SHA-256 {stored.sha256} differs from expected {sha256.lower()}",
                                   expected=sha256.lower(), found=stored.sha256, size=stored.size)
        return stored

    def _read_back(self, path: Path) -> tuple[str, int]:
        """(SHA-256, size) of what is on disk now; the one place verification reads from (tests corrupt
        before it)."""
        try:
            return sha256_file(path)
        except OSError as exc:
            where = path.relative_to(self.root) if path.is_relative_to(self.root) else path
            raise self._os_error(exc, str(where), "cannot read back") from exc

    # -- writing --------------------------------------------------------------------------------

    def put_file(self, key: str, local_path: Path, sha256: str, *, retain_until: object | None = None,
                 legal_hold: bool = False, consume: bool = False) -> StoredObject:
        """Copy `local_path` to `key`; `sha256` is the digest the packager recorded for it.

        `consume=True` hands the file over (a staged document the caller removes afterwards and
        never changes): on the archive's own file system it is then fsynced (unless `make_durable`
        synced it with its chunk and it has not changed since), verified and hard-linked into place
        instead of copied, so its bytes are written to disk once."""
        path = self._path(key)
        local_path = Path(local_path)
        if consume:
            stored = self._store_by_link(key, path, local_path, sha256.lower())
            if stored is not None:
                return stored
        # _store turns every OSError of its own into a RepositoryError, so one left here is ours.
        try:
            with local_path.open("rb") as fh:
                return self._store(key, path, fh, sha256.lower(), source=local_path)
        except OSError as exc:
            raise unreadable_source(local_path, key, exc) from exc

    def _store_by_link(self, key: str, path: Path, local_path: Path, sha256: str) -> StoredObject | None:
        """Store a consumed file by hard link; None when it cannot be linked here (another file
        system, a mount without hard links): the caller copies it instead."""
        already = self._existing(key, path, sha256)
        if already is not None:
            return already
        folder = path.parent
        self._make_folders(folder, key)
        try:
            st = local_path.stat()
            if st.st_dev != folder.stat().st_dev:
                return None
            if not self._settled.take(st):  # not made durable with its chunk (make_durable): now
                with local_path.open("rb") as fh:
                    os.fchmod(fh.fileno(), READ_ONLY)
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise unreadable_source(local_path, key, exc) from exc
        found, size = self._read_back(local_path)  # the one read-back: the name will point at these bytes
        if found != sha256:
            raise source_changed(key, str(local_path), found, sha256)
        crashpoint("fs-temp-written")
        try:
            os.link(local_path, path)
        except FileExistsError:
            return self._stored_meanwhile(key, path, sha256)
        except OSError as exc:
            if exc.errno in _NO_HARDLINK:
                return None
            raise self._os_error(exc, key, "cannot link into place") from exc
        crashpoint("fs-linked")
        self._sync_folder(folder)
        return StoredObject(key, size, sha256)

    def put_bytes(self, key: str, data: bytes, *, retain_until: object | None = None,
                  legal_hold: bool = False) -> StoredObject:
        return self._store(key, self._path(key), data, sha256_bytes(data), source=None)

    def _existing(self, key: str, path: Path, sha256: str) -> StoredObject | None:
        """None when `key` is free; the stored object when it already holds these bytes; else conflict.

        A key found stored may be what a killed run linked before its folders were synced (a batch
        syncs them when it ends), so the folders from it up to the root are synced again before the
        caller may count on it: the rare resume pays a few folder fsyncs, the night none."""
        stored = self._stored(key, path)
        if stored is not None and stored.sha256 != sha256:
            raise conflict(key, stored.sha256, sha256)  # type: ignore[arg-type]
        if stored is not None:
            folder = path.parent
            while folder != self.root and self.root in folder.parents:
                self._sync_folder(folder)
                folder = folder.parent
            self._sync_folder(self.root)
        return stored

    def _store(self, key: str, path: Path, content: BinaryIO | bytes, sha256: str, *,
               source: Path | None) -> StoredObject:
        already = self._existing(key, path, sha256)
        if already is not None:
            return already
        folder = path.parent
        self._make_folders(folder, key)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
        except OSError as exc:
            raise self._os_error(exc, key, "cannot create a temporary file") from exc
        tmp = Path(tmp_name)
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    copy_into(content, out)
                    os.fchmod(out.fileno(), READ_ONLY)
                    os.fsync(out.fileno())
            except OSError as exc:
                raise self._os_error(exc, key, "cannot copy to a temporary file") from exc
            found, size = self._read_back(tmp)
            if found != sha256:
                raise self._not_as_recorded(key, source, found, size, sha256)
            crashpoint("fs-temp-written")
            if not self._publish(tmp, path, key):
                return self._stored_meanwhile(key, path, sha256)
            crashpoint("fs-linked")
        finally:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # a leftover is harmless: list/exists ignore it, sweep removes it
                log.warning("could not remove temporary file %s: %s", tmp, exc)
            self._sync_folder(folder)
        return StoredObject(key, size, sha256)

    def _stored_meanwhile(self, key: str, path: Path, sha256: str) -> StoredObject:
        """Someone else created the key between our check and our link: the same bytes are ours."""
        already = self._existing(key, path, sha256)
        if already is None:
            raise repository_error(RepositoryError, "REPO-IO", key,
                                   "the key appeared and vanished again while we were writing it")
        return already

    def _not_as_recorded(self, key: str, source: Path | None, found: str, size: int, sha256: str) -> RepositoryError:
        """The copy's digest is not the recorded one: either the local file changed since the packager
        measured it (a fault upstream), or the write was damaged on its way to the disk."""
        if source is not None:
            try:
                source_sha256, _ = sha256_file(source)
            except OSError:
                source_sha256 = None
            if source_sha256 is not None and source_sha256 != sha256:
                return source_changed(key, str(source), source_sha256, sha256)
        return repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                f"read back SHA-256 {found} ({size} bytes) after writing {sha256}; nothing was "
                                "stored under the key", expected=sha256, found=found, found_size=size)

    def make_durable(self, local_paths: Iterable[Path]) -> None:
        """Files about to be handed over (`put_file(consume=True)`) made read-only and durable in
        one sync of the archive's file system, so that their puts need no fsync each
        (connectors/repositories/fs_durable.py); where that sync is unavailable, a no-op."""
        try:
            self._settled.settle(self.root, local_paths, READ_ONLY)
        except OSError as exc:
            raise self._os_error(exc, str(self.root), "cannot sync the archive's file system") from exc

    def batch(self) -> AbstractContextManager[None]:
        """Puts inside the block leave their folders to the end of the block, which makes them all
        durable at once (one syncfs where it can; fs_durable.PendingFolders). The block's objects
        are durable when it ends without an exception, which is when the caller may record them."""
        return self._folders.batch()

    def _sync_folder(self, folder: Path) -> None:
        self._folders.sync(folder)

    def _publish(self, tmp: Path, path: Path, key: str) -> bool:
        """Give the temporary file its final name without replacing anything; False if the name was taken."""
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARDLINK:
                raise self._os_error(exc, key, "cannot link into place") from exc
        log.warning("%s cannot hard-link (%s); using check-then-rename, which a concurrent writer of "
                    "the same key could race", self.root, key)
        if path.exists():
            return False
        try:
            os.rename(tmp, path)
        except OSError as exc:
            raise self._os_error(exc, key, "cannot rename into place") from exc
        return True

    def _make_folders(self, folder: Path, key: str) -> None:
        """Create missing folders, fsyncing each parent so that the new entries survive a crash:
        at once, or inside a `batch()` once per parent when the block ends, with the folders its
        files were linked into (a new folder's entry is needed only when its files are, and
        nothing may count on those before the block ends)."""
        missing: list[Path] = []
        p = folder
        while not p.is_dir():
            if p == self.root or p.parent == p:
                break
            missing.append(p)
            p = p.parent
        deferred = self._folders.deferred()
        for d in reversed(missing):
            try:
                d.mkdir(exist_ok=True)
                if deferred is None:
                    fsync_dir(d.parent)
            except OSError as exc:
                raise self._os_error(exc, key, f"cannot create folder {d.relative_to(self.root)}") from exc
            if deferred is not None:
                deferred.add(d.parent)

    # -- housekeeping ---------------------------------------------------------------------------

    def sweep_temporary(self, older_than_seconds: float = 3600.0) -> list[str]:
        """Remove temporary leftovers of crashed writes older than `older_than_seconds` (a write in
        progress in another process keeps its file); their paths relative to the root."""
        try:
            return sweep_leftovers(self.root, TEMP_PREFIX, older_than_seconds)
        except OSError as exc:
            where = Path(exc.filename).relative_to(self.root).as_posix() if exc.filename else "."
            raise self._os_error(exc, where, "cannot remove leftover") from exc
