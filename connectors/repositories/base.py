"""The archive repository interface shared by `fs` and `s3` (one interface, two stores).

Keys are POSIX relative paths (`schemas.layout.package_key(...)/<path in package>`). A repository
never overwrites: writing a key that exists with the same SHA-256 is a no-op (which is what makes a
re-run after a crash idempotent), with different bytes it raises `RepositoryConflict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from schemas.findings import Finding, GuidangError
from schemas.layout import is_dangerous_path


class RepositoryError(GuidangError):
    """The repository cannot be written or read (permissions, missing bucket, network): the run fails."""


class RepositoryConflict(RepositoryError):
    """A key already holds different bytes: the archive is never overwritten."""


class VerificationFailed(RepositoryError):
    """What was read back differs from what was written."""


class ObjectNotFound(RepositoryError):
    """`open` (or `verify`) was asked for a key the repository does not hold."""


_E = TypeVar("_E", bound=RepositoryError)


def repository_error(cls: type[_E], code: str, where: str, message: str, **details: Any) -> _E:
    """Build a repository error that carries its coded finding (codes in schemas/codes/repository.yaml).

    `where` names the key, file or bucket; callers never put secrets or unmasked personal data in it.
    """
    finding = Finding(code, where, message, details=details)
    return cls(str(finding), [finding])


def check_key(key: str) -> None:
    """The one gate every repository key passes: nothing may escape the repository root or prefix."""
    if is_dangerous_path(key):
        raise repository_error(RepositoryError, "REPO-UNSAFE-KEY", repr(key),
                               "refused: empty, absolute, '.'/'..' segment, backslash or control character")


def check_list_prefix(prefix: str) -> str:
    """A `list` prefix is a string prefix (as in S3), but its folder part, returned, passes the key
    gate too."""
    folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    if folder_part and is_dangerous_path(folder_part):
        raise repository_error(RepositoryError, "REPO-UNSAFE-KEY", repr(prefix), "refused list prefix")
    return folder_part


def not_found(where: str) -> ObjectNotFound:
    return repository_error(ObjectNotFound, "REPO-NO-SUCH-KEY", where, "no such object")


def conflict(key: str, stored_sha256: str, new_sha256: str) -> RepositoryConflict:
    """The key holds other bytes: never overwritten, whichever repository."""
    return repository_error(RepositoryConflict, "REPO-CONFLICT", key,
                            f"already stored with SHA-256 {stored_sha256}; refusing to overwrite with {new_sha256}",
                            stored_sha256=stored_sha256, new_sha256=new_sha256)


def source_changed(key: str, source: str, found: str, expected: str) -> VerificationFailed:
    """The file to store no longer hashes to what the packager recorded: nothing is stored."""
    return repository_error(VerificationFailed, "REPO-SOURCE-CHANGED", key,
                            f"{source} hashes to {found}, the packager recorded {expected}",
                            expected=expected, found=found, source=source)


def unreadable_source(local_path: Path, key: str, exc: OSError) -> RepositoryError:
    return repository_error(RepositoryError, "REPO-IO", str(local_path),
                            f"cannot read the file to store under {key}: {exc.strerror}")


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str | None  # as the store reports it (fs: computed; s3: the stored checksum), if known


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One version of an object in a store that keeps versions (S3 versioning, Object Lock)."""

    key: str
    version_id: str
    latest: bool
    delete_marker: bool


class Repository(Protocol):
    def put_file(self, key: str, local_path: Path, sha256: str, *, retain_until: object | None = None,
                 legal_hold: bool = False, consume: bool = False) -> StoredObject:
        """Store a local file under `key`, verify it, and return what is stored. With `consume` the
        caller hands the file over (it removes it afterwards and never changes it)."""
        ...

    def make_durable(self, local_paths: Iterable[Path]) -> None:
        """Files the caller is about to hand over with `put_file(consume=True)`: where the store
        links such files in place, it may make them durable now, together, instead of one by one."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """A block of puts that becomes durable as a whole when it ends (the caller records it then)."""
        ...

    def put_bytes(self, key: str, data: bytes, *, retain_until: object | None = None,
                  legal_hold: bool = False) -> StoredObject: ...

    def exists(self, key: str) -> bool: ...

    def head(self, key: str) -> StoredObject | None: ...

    def open(self, key: str) -> Iterator[bytes]:
        """The object's bytes in chunks (never the whole object in memory)."""
        ...

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under `prefix`, sorted by key."""
        ...

    def verify(self, key: str, sha256: str) -> StoredObject:
        """Re-read the stored object in full and compare its SHA-256 (the fixity audit's entry point)."""
        ...

    def sweep_temporary(self, older_than_seconds: float = ...) -> list[str]:  # type: ignore[assignment]
        """Remove what crashed writes left behind (fs: temporary files; s3: incomplete multipart uploads)."""
        ...

    # After the transfer (connectors/repositories/disposal.py): locks, destruction, repair.

    def lock_state(self, key: str) -> Any:
        """The object's retain-until and legal hold as the store reports them (`disposal.LockState`)."""
        ...

    def set_legal_hold(self, key: str, on: bool) -> bool:
        """Set or clear the store's legal hold; False where the store has none (a filesystem)."""
        ...

    def extend_retention(self, key: str, until: Any) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove a destroyed record's object (refused while the store protects it); False if absent."""
        ...

    def restore(self, key: str, chunks: Iterable[bytes], sha256: str, *, retain_until: object | None = None,
                legal_hold: bool = False) -> StoredObject:
        """Put verified bytes over a changed or missing object: the fixity repair's one write."""
        ...

