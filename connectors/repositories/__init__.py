"""Archive repositories: `open_repository` turns the `repository:` section of guidang.yaml into one.

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
from schemas.config import FsRepository, S3Repository

__all__ = [
    "FilesystemRepository",
    "ObjectNotFound",
    "Repository",
    "RepositoryConflict",
    "RepositoryError",
    "StoredObject",
    "VerificationFailed",
    "open_repository",
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
