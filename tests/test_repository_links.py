"""A symbolic link planted in the filesystem archive is never followed, for any read or write: a
catalogue replaced by a link to a system file must not be served as an archived object."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from connectors.repositories.base import RepositoryError
from connectors.repositories.fs import FilesystemRepository

SECRET = b"root:x:0:0:secret outside the archive\n"


def _codes(exc: BaseException) -> list[str]:
    return [f.code for f in getattr(exc, "findings", [])]


@pytest.fixture
def planted(tmp_path: Path) -> tuple[FilesystemRepository, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    root = tmp_path / "archive"
    repo = FilesystemRepository(root, create=True)
    repo.put_bytes("T1/目录文件.xml", b"<catalogue/>")
    os.chmod(root / "T1" / "目录文件.xml", 0o644)
    (root / "T1" / "目录文件.xml").unlink()
    (root / "T1" / "目录文件.xml").symlink_to(outside / "passwd")  # a file replaced by a link
    (root / "T2").symlink_to(outside)  # a folder that is a link
    return repo, outside


@pytest.mark.parametrize("key", ["T1/目录文件.xml", "T2/passwd"])
def test_every_read_refuses_a_link_with_its_code(planted: tuple[FilesystemRepository, Path], key: str) -> None:
    repo, _ = planted
    digest = hashlib.sha256(SECRET).hexdigest()
    for read in (lambda: b"".join(repo.open(key)), lambda: repo.head(key), lambda: repo.verify(key, digest),
                 lambda: repo.exists(key)):
        with pytest.raises(RepositoryError) as info:
            read()
        assert _codes(info.value) == ["REPO-LINK"], key
        assert "symbolic link" in str(info.value)
    assert key not in {o.key for o in repo.list("")}


def test_a_write_through_a_linked_folder_is_refused_and_nothing_lands_outside(
        planted: tuple[FilesystemRepository, Path]) -> None:
    repo, outside = planted
    with pytest.raises(RepositoryError) as info:
        repo.put_bytes("T2/new.txt", b"x")
    assert _codes(info.value) == ["REPO-LINK"]
    assert not (outside / "new.txt").exists()
    assert (outside / "passwd").read_bytes() == SECRET


def test_the_root_itself_may_be_a_link_to_the_mounted_volume(tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    (tmp_path / "archive").symlink_to(volume)
    repo = FilesystemRepository(tmp_path / "archive")
    repo.put_bytes("A/b.txt", b"kept")
    assert b"".join(repo.open("A/b.txt")) == b"kept"
