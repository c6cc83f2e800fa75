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


def test_fixity_refuses_a_stored_file_replaced_by_a_link_as_a_finding(small_pristine: Path, tmp_path: Path) -> None:
    import shutil

    from connectors.repositories import open_repository
    from custody.fixity import check_fixity
    from ledger.store import Ledger
    from night.engine import run_nightly
    from schemas.config import load_settings
    from tests.world_support import unified_running

    world = tmp_path / "world"
    shutil.copytree(small_pristine, world)
    with unified_running(world):
        settings = load_settings(world / "guidang.yaml")
        assert run_nightly(settings)["status"] == "completed"
    stored = sorted((world / "archive").rglob("*.pdf"))[0]
    outside = tmp_path / "same-bytes.pdf"
    outside.write_bytes(stored.read_bytes())  # even the very same bytes: a link is never followed
    stored.unlink()
    stored.symlink_to(outside)
    key = stored.relative_to(world / "archive").as_posix()
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        result = check_fixity(ledger, open_repository(settings.repository, base_dir=settings.base_dir))
    found = [(f.code, f.where) for f in result.findings]
    assert ("A-OBJECT-LINK", key) in found, found

    # `guidang check BATCH` on the batch's stored folder: a catalogue replaced by a link is not read
    from custody.batch_check import check_batch
    from packager.transfer import CATALOGUE_FILE
    from schemas.layout import transfer_key

    batch_folder = next((world / "archive").rglob(CATALOGUE_FILE)).parent
    batch_id = batch_folder.name
    assert (world / "archive" / transfer_key(batch_id)) == batch_folder
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0", encoding="utf-8")
    (batch_folder / CATALOGUE_FILE).unlink()
    (batch_folder / CATALOGUE_FILE).symlink_to(secret)
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        report = check_batch(batch_folder, batch_id, ledger=ledger,
                             repository=open_repository(settings.repository, base_dir=settings.base_dir))
    assert ("A-OBJECT-LINK", CATALOGUE_FILE) in [(f.code, f.where) for f in report.findings]
    assert not report.passed
