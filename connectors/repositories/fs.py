"""The embedded archive repository: a folder on a (local or mounted) filesystem.

Durability and never-overwrite come from the order of operations in `_store`:
write to a temporary name in the target folder, fsync, make it read-only, then *hard-link* it
to its final name and unlink the temporary name. `os.link` fails when the final name exists, so
"create if absent" is atomic even against a concurrent writer of the same key, where
`os.replace` would silently replace whatever that writer had just put there. Where the
filesystem cannot hard-link (some SMB/FUSE mounts) we fall back to check-then-rename and log that
the race window exists. A crash at any point leaves either nothing, or a complete read-only file
plus a temporary leftover that `list`/`exists` ignore and `sweep_temporary` removes.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
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
from schemas.crashpoints import crashpoint
from schemas.digest import Digests, copy_and_digest, digest_file, iter_file, sha256_bytes

log = logging.getLogger(__name__)

# Temporary names start with this; a key segment that does too is refused, so the two never meet.
TEMP_PREFIX = ".guidang-tmp-"
READ_ONLY = 0o444
_NO_HARDLINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemRepository:
    """Archive objects as read-only files under `root`; see the module docstring for the write order.

    `retain_until` and `legal_hold` are accepted for interface parity with S3 and otherwise ignored:
    a plain filesystem has no retention lock, read-only files are what it offers.
    """

    def __init__(self, root: Path, *, create: bool = False) -> None:
        # A missing root is an error by default: an unmounted archive volume must not silently
        # turn into a fresh folder on the system disk.
        self.root = Path(root).absolute()
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
        check_key(key)
        if any(part.startswith(TEMP_PREFIX) for part in key.split("/")):
            raise repository_error(RepositoryError, "REPO-UNSAFE-KEY", repr(key),
                                   f"names starting with {TEMP_PREFIX!r} are reserved for temporary files")
        return self.root.joinpath(*key.split("/"))

    def _os_error(self, exc: OSError, where: str, action: str) -> RepositoryError:
        if exc.errno in _NOT_WRITABLE:
            return repository_error(RepositoryError, "REPO-NOT-WRITABLE", where,
                                    f"{action}: {exc.strerror} (archive root {self.root} read-only or not "
                                    "writable by this user?)", errno=exc.errno)
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
        d = self._read_back(path)
        return StoredObject(key, d.size, d.sha256)

    def open(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            raise not_found(key) from None
        except OSError as exc:
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
        found: list[StoredObject] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not key.startswith(prefix):
                    continue
                full = Path(dirpath, name)
                if full.is_symlink() or not full.is_file():
                    continue
                found.append(StoredObject(key, full.stat().st_size, None))
        found.sort(key=lambda o: o.key)
        yield from found

    def verify(self, key: str, sha256: str) -> StoredObject:
        stored = self._stored(key, self._path(key))
        if stored is None:
            raise not_found(key)
        if stored.sha256 != sha256.lower():
            raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                   f"stored SHA-256 {stored.sha256} differs from expected {sha256.lower()}",
                                   expected=sha256.lower(), found=stored.sha256, size=stored.size)
        return stored

    def _read_back(self, path: Path) -> Digests:
        """Hash what is on disk now; the one place verification reads from (tests corrupt before it)."""
        try:
            return digest_file(path)
        except OSError as exc:
            raise self._os_error(exc, str(path.relative_to(self.root)), "cannot read back") from exc

    # -- writing --------------------------------------------------------------------------------

    def put_file(self, key: str, local_path: Path, sha256: str, *, retain_until: object | None = None,
                 legal_hold: bool = False) -> StoredObject:
        """Copy `local_path` to `key`; `sha256` is the digest the packager recorded for it."""
        path = self._path(key)
        # _store turns every OSError of its own into a RepositoryError, so one left here is ours.
        try:
            with Path(local_path).open("rb") as fh:
                return self._store(key, path, iter_file(fh), sha256.lower(), source=str(local_path))
        except OSError as exc:
            raise unreadable_source(local_path, key, exc) from exc

    def put_bytes(self, key: str, data: bytes, *, retain_until: object | None = None,
                  legal_hold: bool = False) -> StoredObject:
        return self._store(key, self._path(key), [data], sha256_bytes(data), source="<bytes>")

    def _existing(self, key: str, path: Path, sha256: str) -> StoredObject | None:
        """None when `key` is free; the stored object when it already holds these bytes; else conflict."""
        stored = self._stored(key, path)
        if stored is not None and stored.sha256 != sha256:
            raise conflict(key, stored.sha256, sha256)  # type: ignore[arg-type]
        return stored

    def _store(self, key: str, path: Path, chunks: Iterable[bytes], sha256: str, *, source: str) -> StoredObject:
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
                    written = copy_and_digest(chunks, out)
                    out.flush()
                    os.fchmod(out.fileno(), READ_ONLY)
                    os.fsync(out.fileno())
            except OSError as exc:
                raise self._os_error(exc, key, "cannot copy to a temporary file") from exc
            if written.sha256 != sha256:
                raise source_changed(key, source, written.sha256, sha256)
            crashpoint("fs-temp-written")
            if not self._publish(tmp, path, key):
                # Someone else created the key between our check and our link.
                already = self._existing(key, path, sha256)
                if already is not None:
                    return already
                raise repository_error(RepositoryError, "REPO-IO", key,
                                       "the key appeared and vanished again while we were writing it")
            crashpoint("fs-linked")
        finally:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # a leftover is harmless: list/exists ignore it, sweep removes it
                log.warning("could not remove temporary file %s: %s", tmp, exc)
            try:
                _fsync_dir(folder)
            except OSError as exc:
                log.warning("could not fsync folder %s: %s", folder, exc)
        return self._verify_written(key, path, sha256, written.size)

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

    def _verify_written(self, key: str, path: Path, sha256: str, size: int) -> StoredObject:
        d = self._read_back(path)
        if d.sha256 != sha256 or d.size != size:
            raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                   f"read back SHA-256 {d.sha256} ({d.size} bytes) after writing "
                                   f"{sha256} ({size} bytes)",
                                   expected=sha256, found=d.sha256, expected_size=size, found_size=d.size)
        return StoredObject(key, d.size, d.sha256)

    def _make_folders(self, folder: Path, key: str) -> None:
        """Create missing folders, fsyncing each parent so that the new entries survive a crash."""
        missing: list[Path] = []
        p = folder
        while not p.is_dir():
            if p == self.root or p.parent == p:
                break
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir(exist_ok=True)
                _fsync_dir(d.parent)
            except OSError as exc:
                raise self._os_error(exc, key, f"cannot create folder {d.relative_to(self.root)}") from exc

    # -- housekeeping ---------------------------------------------------------------------------

    def sweep_temporary(self, older_than_seconds: float = 3600.0) -> list[str]:
        """Remove temporary leftovers of crashed writes; returns their paths relative to the root.

        Only files older than `older_than_seconds` go, so a write in progress in another process
        keeps its temporary file.
        """
        cutoff = time.time() - older_than_seconds
        removed: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    continue
                full = Path(dirpath, name)
                try:
                    if full.lstat().st_mtime > cutoff:
                        continue
                    full.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise self._os_error(exc, str(full.relative_to(self.root)), "cannot remove leftover") from exc
                removed.append(full.relative_to(self.root).as_posix())
        return sorted(removed)
