"""A chunk's new files are written back while it makes them (guidang_io/writeback.py), and a write
error that background sync sees is not lost to the chunk's own durability sync."""

from __future__ import annotations

import ctypes
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.repositories.base import RepositoryError
from connectors.repositories.fs import FilesystemRepository
from guidang_io import writeback

REAL_SYNCFS = writeback.syncfs_call()
needs_syncfs = pytest.mark.skipif(REAL_SYNCFS is None, reason="syncfs unusable here (not Linux >= 5.8)")


def _fresh(monkeypatch: pytest.MonkeyPatch, syncfs: Callable[[int], int]) -> None:
    monkeypatch.setattr(writeback, "syncfs_call", lambda: syncfs)
    monkeypatch.setattr(writeback, "_PACER", writeback._Pacer())


def _until(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return check()


@needs_syncfs
def test_a_paced_block_syncs_its_file_system_while_open_and_not_after(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []

    def recording(fd: int) -> int:
        synced.append(os.fstat(fd).st_dev)
        return REAL_SYNCFS(fd)  # type: ignore[misc]

    _fresh(monkeypatch, recording)
    with writeback.paced([tmp_path, tmp_path / "absent"]):
        for i in range(20):
            (tmp_path / f"{i:02}.pdf").write_bytes(b"%PDF-1.7 " * 100)
        assert _until(lambda: len(synced) >= 3), "no background sync while the block was open"
    after_block = len(synced)
    time.sleep(writeback.INTERVAL * 10)
    assert len(synced) <= after_block + 1  # at most the one that was under way
    assert set(synced) == {tmp_path.stat().st_dev}


@needs_syncfs
def test_a_write_error_the_background_sync_saw_fails_the_chunks_own_sync(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    root = tmp_path / "archive"
    root.mkdir()
    staged = root / "staged.pdf"
    staged.write_bytes(b"%PDF-1.7 " * 100)
    _fresh(monkeypatch, failing)
    with writeback.paced([root]):
        assert _until(lambda: writeback.failure(root.stat().st_dev) is not None)

    repo = FilesystemRepository(root)  # its own sync is the real one, which succeeds now
    monkeypatch.setattr(writeback, "syncfs_call", lambda: REAL_SYNCFS)
    with pytest.raises(RepositoryError) as caught:
        repo.make_durable([staged])
    assert "cannot sync the archive's file system" in str(caught.value)
    assert os.strerror(errno.EIO) in str(caught.value)


def test_without_syncfs_a_paced_block_only_runs_its_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writeback, "syncfs_call", lambda: None)
    monkeypatch.setattr(writeback, "_PACER", writeback._Pacer())
    with writeback.paced([tmp_path]):
        (tmp_path / "a.pdf").write_bytes(b"%PDF")
    assert writeback._PACER.thread is None
