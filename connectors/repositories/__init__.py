"""Archive repositories: `open_repository` turns the `repository:` section of guidang.yaml into one,
`open_with_replicas` that section with its `replicas:` (the night's writes), `open_copies` each copy
by name (the fixity check and its repair).

Both implementations satisfy `base.Repository`; the S3 one is imported only when configured, so a
filesystem-only installation never pays for importing boto3.
"""

from __future__ import annotations

from pathlib import Path

from connectors.repositories.base import (
    ObjectNotFound,
    Repository,
    RepositoryConflict,
    RepositoryError,
    StoredObject,
    VerificationFailed,
)
from connectors.repositories.fs import FilesystemRepository
from connectors.repositories.replicated import ReplicatedRepository, catch_up
from schemas.config import FsRepository, S3Repository, Settings

__all__ = [
    "FilesystemRepository",
    "ObjectNotFound",
    "ReplicatedRepository",
    "Repository",
    "RepositoryConflict",
    "RepositoryError",
    "StoredObject",
    "VerificationFailed",
    "catch_up",
    "open_copies",
    "open_repository",
    "open_with_replicas",
]


def open_repository(settings_repo: FsRepository | S3Repository, *, base_dir: Path,
                    create: bool = False) -> Repository:
    """The repository that `settings.repository` describes; `base_dir` resolves a relative fs path.

    `create=True` makes a missing fs root (the demo's fresh world); by default a missing root is an
    error, because an unmounted archive volume must not become a new folder on the system disk.
    """
    if isinstance(settings_repo, FsRepository):
        root = Path(settings_repo.path)
        return FilesystemRepository(root if root.is_absolute() else Path(base_dir) / root, create=create)
    if isinstance(settings_repo, S3Repository):
        from connectors.repositories.s3 import S3ObjectRepository

        return S3ObjectRepository(settings_repo, max_attempts=settings_repo.max_attempts,
                                  connect_timeout=settings_repo.connect_timeout_seconds,
                                  read_timeout=settings_repo.read_timeout_seconds)
    raise TypeError(f"unknown repository configuration: {type(settings_repo).__name__}")


def open_with_replicas(settings: Settings, *, create: bool = False) -> Repository:
    """The repository the night writes to: the primary, with the configured replicas beside it (a
    replica that cannot be opened is left out for the night, see `replicated`)."""
    primary = open_repository(settings.repository, base_dir=settings.base_dir, create=create)
    if not settings.replicas:
        return primary
    copies: dict[str, Repository | RepositoryError] = {}
    for replica in settings.replicas:
        try:
            copies[replica.name] = open_repository(replica.repository, base_dir=settings.base_dir)
        except RepositoryError as exc:
            copies[replica.name] = exc
    return ReplicatedRepository(primary, copies)  # type: ignore[return-value]


def open_copies(settings: Settings) -> dict[str, Repository | RepositoryError]:
    """Every copy of the archive by name ("primary" and each replica), or why it cannot be opened."""
    out: dict[str, Repository | RepositoryError] = {}
    for name, config in [("primary", settings.repository), *((r.name, r.repository) for r in settings.replicas)]:
        try:
            out[name] = open_repository(config, base_dir=settings.base_dir)
        except RepositoryError as exc:
            out[name] = exc
    return out
