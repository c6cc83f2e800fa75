"""The filesystem archive repository on real files: never overwrite, read-only, verified, crash-safe."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from connectors.repositories import open_repository
from connectors.repositories.base import (
    ObjectNotFound,
    RepositoryConflict,
    RepositoryError,
    VerificationFailed,
)
from connectors.repositories.fs import TEMP_PREFIX, FilesystemRepository
from schemas.config import FsRepository
from schemas.digest import BLOCK_SIZE

PKG = "Z109/2026/D30/Z109-WS·2026·D30·XK-0001"
REPO_ROOT = Path(__file__).resolve().parents[1]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def codes(exc: BaseException) -> list[str]:
    return [f.code for f in getattr(exc, "findings", [])]


@pytest.fixture
def repo(tmp_path: Path) -> FilesystemRepository:
    root = tmp_path / "archive"
    root.mkdir()
    return FilesystemRepository(root)


def test_put_open_list_head(repo: FilesystemRepository, tmp_path: Path) -> None:
    doc = tmp_path / "申请书.pdf"
    doc.write_bytes(b"%PDF-1.7 application" * 1000)
    stored = repo.put_file(f"{PKG}/申报材料/申请书.pdf", doc, sha(doc.read_bytes()))
    assert (stored.size, stored.sha256) == (doc.stat().st_size, sha(doc.read_bytes()))
    repo.put_bytes(f"{PKG}/元数据.xml", b"<metadata/>")
    repo.put_bytes("Z109/2026/D10/Z109-WS·2026·D10·XK-0002/_COMPLETE", b"")
    repo.put_bytes(f"{PKG}/_COMPLETE", b"done")

    on_disk = repo.root / PKG / "申报材料" / "申请书.pdf"
    assert on_disk.read_bytes() == doc.read_bytes()
    assert b"".join(repo.open(f"{PKG}/元数据.xml")) == b"<metadata/>"
    assert repo.exists(f"{PKG}/_COMPLETE") and not repo.exists(f"{PKG}/missing.pdf")

    keys = [o.key for o in repo.list("")]
    assert keys == sorted(keys) and len(keys) == 4
    assert [o.key for o in repo.list(f"{PKG}/")] == [
        f"{PKG}/_COMPLETE", f"{PKG}/元数据.xml", f"{PKG}/申报材料/申请书.pdf"]
    assert [o.key for o in repo.list("Z109/2026/D1")] == ["Z109/2026/D10/Z109-WS·2026·D10·XK-0002/_COMPLETE"]
    assert {o.key: o.size for o in repo.list(f"{PKG}/_")} == {f"{PKG}/_COMPLETE": 4}

    head = repo.head(f"{PKG}/元数据.xml")
    assert head is not None and head.sha256 == sha(b"<metadata/>") and head.size == 11
    assert repo.head(f"{PKG}/nothing") is None
    assert repo.verify(f"{PKG}/元数据.xml", sha(b"<metadata/>")).size == 11


def test_open_streams_in_blocks(repo: FilesystemRepository) -> None:
    data = os.urandom(BLOCK_SIZE * 2 + 123)
    repo.put_bytes("big.bin", data)
    chunks = list(repo.open("big.bin"))
    assert len(chunks) == 3 and all(len(c) <= BLOCK_SIZE for c in chunks)
    assert b"".join(chunks) == data
    with pytest.raises(ObjectNotFound) as exc:
        repo.open("no/such/key")
    assert codes(exc.value) == ["REPO-NO-SUCH-KEY"]


def test_reput_same_bytes_is_a_no_op(repo: FilesystemRepository, tmp_path: Path) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"same bytes")
    first = repo.put_file(f"{PKG}/a.pdf", doc, sha(b"same bytes"))
    before = (repo.root / PKG / "a.pdf").stat()
    again = repo.put_file(f"{PKG}/a.pdf", doc, sha(b"same bytes"))
    again_bytes = repo.put_bytes(f"{PKG}/a.pdf", b"same bytes")
    after = (repo.root / PKG / "a.pdf").stat()
    assert first == again == again_bytes
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert [o.key for o in repo.list("")] == [f"{PKG}/a.pdf"]


def test_different_bytes_conflict_and_original_survives(repo: FilesystemRepository, tmp_path: Path) -> None:
    repo.put_bytes(f"{PKG}/a.pdf", b"original")
    other = tmp_path / "other.pdf"
    other.write_bytes(b"tampered")
    with pytest.raises(RepositoryConflict) as exc:
        repo.put_file(f"{PKG}/a.pdf", other, sha(b"tampered"))
    message = str(exc.value)
    assert f"{PKG}/a.pdf" in message and sha(b"original") in message and sha(b"tampered") in message
    assert codes(exc.value) == ["REPO-CONFLICT"]
    assert exc.value.findings[0].details == {"stored_sha256": sha(b"original"), "new_sha256": sha(b"tampered")}
    with pytest.raises(RepositoryConflict):
        repo.put_bytes(f"{PKG}/a.pdf", b"tampered")
    assert (repo.root / PKG / "a.pdf").read_bytes() == b"original"


def test_stored_files_are_read_only(repo: FilesystemRepository) -> None:
    repo.put_bytes(f"{PKG}/a.pdf", b"x")
    path = repo.root / PKG / "a.pdf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    if os.geteuid() != 0:  # root ignores permission bits; the mode is what we can check there
        with pytest.raises(PermissionError):
            path.open("r+b")


def test_wrong_claimed_digest_stores_nothing(repo: FilesystemRepository, tmp_path: Path) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"what the packager saw, then changed")
    with pytest.raises(VerificationFailed) as exc:
        repo.put_file(f"{PKG}/a.pdf", doc, sha(b"what the packager saw"))
    assert codes(exc.value) == ["REPO-SOURCE-CHANGED"]
    assert not repo.exists(f"{PKG}/a.pdf")
    assert not any((repo.root / PKG).iterdir())  # no temporary left behind either


@pytest.mark.parametrize("key", [
    "../escape.pdf", "/etc/passwd", f"{PKG}/../../../x", f"{PKG}/申报材料/..", "a\\b.pdf", "", "a//b",
    "a/./b", "dir/", "C:/x", " lead", "a/b\nc", f"{PKG}/{TEMP_PREFIX}abc",
])
def test_dangerous_keys_are_refused(repo: FilesystemRepository, key: str, tmp_path: Path) -> None:
    for call in (lambda: repo.put_bytes(key, b"x"), lambda: repo.exists(key), lambda: repo.open(key)):
        with pytest.raises(RepositoryError) as exc:
            call()
        assert codes(exc.value) == ["REPO-UNSAFE-KEY"]
    outside = sorted(p.name for p in tmp_path.iterdir())
    assert outside == ["archive"] and not any(repo.root.iterdir())


def test_crash_leftovers_are_ignored_and_swept(repo: FilesystemRepository) -> None:
    """A process killed after writing the temporary file and before linking it leaves a leftover."""
    child = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from connectors.repositories.fs import FilesystemRepository

        class DiesBeforeLink(FilesystemRepository):
            def _publish(self, tmp, path, key):
                os._exit(9)  # like kill -9: no finally blocks, no cleanup

        DiesBeforeLink(Path(sys.argv[1])).put_bytes({PKG + "/a.pdf"!r}, b"half way")
    """)
    done = subprocess.run([sys.executable, "-c", child, str(repo.root)], cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 9
    leftovers = [p for p in (repo.root / PKG).iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert len(leftovers) == 1 and leftovers[0].read_bytes() == b"half way"

    assert list(repo.list("")) == [] and not repo.exists(f"{PKG}/a.pdf")
    assert repo.sweep_temporary() == []  # too young: could be a write in progress elsewhere
    assert repo.sweep_temporary(older_than_seconds=0) == [f"{PKG}/{leftovers[0].name}"]
    assert not leftovers[0].exists()
    repo.put_bytes(f"{PKG}/a.pdf", b"the real thing")  # a re-run completes the write
    assert [o.key for o in repo.list("")] == [f"{PKG}/a.pdf"]


class CorruptsBeforeVerify(FilesystemRepository):
    """A disk that damages the file between our write and our read-back (one flipped bit)."""

    def _read_back(self, path: Path):  # type: ignore[no-untyped-def]
        path.chmod(0o644)
        with path.open("r+b") as fh:
            first = fh.read(1)
            fh.seek(0)
            fh.write(bytes([first[0] ^ 0x01]))
        path.chmod(0o444)
        return super()._read_back(path)


def test_verification_catches_corruption_after_write_and_never_publishes_it(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    bad = CorruptsBeforeVerify(root)
    with pytest.raises(VerificationFailed) as exc:
        bad.put_bytes(f"{PKG}/a.pdf", b"%PDF precious")
    assert codes(exc.value) == ["REPO-VERIFY-FAILED"]
    details = exc.value.findings[0].details
    assert details["expected"] == sha(b"%PDF precious") and details["found"] != details["expected"]
    # The damaged copy never got the final name (nothing may overwrite it there): the key is free,
    # no temporary is left, and a re-run stores the right bytes.
    assert not bad.exists(f"{PKG}/a.pdf") and not any((root / PKG).iterdir())
    good = FilesystemRepository(root)
    good.put_bytes(f"{PKG}/a.pdf", b"%PDF precious")
    assert good.verify(f"{PKG}/a.pdf", sha(b"%PDF precious")).size == len(b"%PDF precious")


def test_a_damaged_copy_of_a_file_is_not_published(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    root.mkdir()
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF precious, copied by the kernel")
    with pytest.raises(VerificationFailed) as exc:
        CorruptsBeforeVerify(root).put_file(f"{PKG}/a.pdf", doc, sha(doc.read_bytes()))
    assert codes(exc.value) == ["REPO-VERIFY-FAILED"]  # the source is intact: the write was damaged
    assert not FilesystemRepository(root).exists(f"{PKG}/a.pdf")


def test_concurrent_writers_never_overwrite(repo: FilesystemRepository) -> None:
    for round_no in range(20):
        key = f"{PKG}/race-{round_no}.pdf"
        barrier = threading.Barrier(4)
        outcomes: dict[int, str] = {}

        def write(i: int, key: str = key, barrier: threading.Barrier = barrier,
                  outcomes: dict[int, str] = outcomes) -> None:
            barrier.wait()
            try:
                repo.put_bytes(key, f"writer {i % 2}".encode())  # two pairs of identical writers
                outcomes[i] = "stored"
            except RepositoryConflict:
                outcomes[i] = "conflict"

        threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winner = (repo.root / key).read_bytes()
        for i, outcome in outcomes.items():
            assert outcome == ("stored" if f"writer {i % 2}".encode() == winner else "conflict"), (round_no, i)
    assert not [p for p in (repo.root / PKG).iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError) as exc:
        FilesystemRepository(tmp_path / "not-mounted")
    assert codes(exc.value) == ["REPO-ROOT-MISSING"] and "not-mounted" in str(exc.value)
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(RepositoryError):
        FilesystemRepository(tmp_path / "a-file")
    made = FilesystemRepository(tmp_path / "new" / "archive", create=True)
    assert made.root.is_dir()


def test_read_only_root_is_a_clear_error() -> None:
    """A writer without write permission on the root: a forked child that drops to `nobody` when the
    tests run as root (root ignores permission bits), else this user on a 0o555 folder."""
    base = Path(tempfile.mkdtemp(prefix="guidang-ro-"))
    try:
        base.chmod(0o755)
        root = base / "archive"
        root.mkdir()
        root.chmod(0o555)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report through the pipe, never return into pytest
            os.close(read_end)
            try:
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                FilesystemRepository(root).put_bytes("Z109/2026/D30/x/a.pdf", b"x")
                outcome = "stored"
            except RepositoryError as exc:
                outcome = f"{exc.findings[0].code} {exc}"
            except BaseException as exc:
                outcome = f"unexpected {exc!r}"
            os.write(write_end, outcome.encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            outcome = pipe.read().decode()
        os.waitpid(pid, 0)
        assert outcome.startswith("REPO-NOT-WRITABLE"), outcome
        assert str(root) in outcome and "read-only" in outcome
        assert list(root.iterdir()) == []
    finally:
        (base / "archive").chmod(0o755)
        shutil.rmtree(base)


def test_open_repository_resolves_relative_fs_path(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    repo = open_repository(FsRepository(path="archive"), base_dir=tmp_path)
    assert isinstance(repo, FilesystemRepository) and repo.root == tmp_path / "archive"
    with pytest.raises(RepositoryError):
        open_repository(FsRepository(path="elsewhere"), base_dir=tmp_path)
    assert open_repository(FsRepository(path="elsewhere"), base_dir=tmp_path, create=True).root.is_dir()


def _fsynced_files(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The inodes of regular files os.fsync is called on from now (folder syncs are not counted)."""
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            synced.append(st.st_ino)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


def test_files_made_durable_with_their_chunk_are_linked_without_an_fsync_each_unless_they_changed(
    repo: FilesystemRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """make_durable (one syncfs for a chunk's files) stands in for each put's own fsync only for a
    file that has not changed since; one written to afterwards is fsynced before it is linked."""
    from connectors.repositories import fs_durable

    staged = tmp_path / "staging"
    staged.mkdir()
    same, changed = staged / "01.pdf", staged / "02.pdf"
    same.write_bytes(b"%PDF-1.7 one" * 500)
    changed.write_bytes(b"%PDF-1.7 two" * 500)
    synced = _fsynced_files(monkeypatch)
    repo.make_durable([same, changed])
    settled = fs_durable._syncfs() is not None  # Linux >= 5.8; elsewhere every put fsyncs, as before
    if settled:
        assert stat.S_IMODE(same.stat().st_mode) == 0o444
    os.chmod(changed, 0o644)
    with changed.open("ab") as fh:
        fh.write(b" appended after the sync")
    inodes = {p.name: p.stat().st_ino for p in (same, changed)}

    for p in (same, changed):
        data = p.read_bytes()
        repo.put_file(f"{PKG}/申报材料/{p.name}", p, sha(data), consume=True)
        stored = repo.root / PKG / "申报材料" / p.name
        assert stored.read_bytes() == data and stat.S_IMODE(stored.stat().st_mode) == 0o444

    assert inodes["02.pdf"] in synced
    assert (inodes["01.pdf"] in synced) is not settled


def test_a_file_made_durable_is_still_verified_against_its_digest(repo: FilesystemRepository, tmp_path: Path) -> None:
    doc = tmp_path / "03.pdf"
    doc.write_bytes(b"%PDF-1.7 three" * 500)
    repo.make_durable([doc])
    with pytest.raises(VerificationFailed):
        repo.put_file(f"{PKG}/申报材料/03.pdf", doc, sha(b"what the packager recorded"), consume=True)
    assert not (repo.root / PKG / "申报材料" / "03.pdf").exists()


def _folder_syncs(monkeypatch: pytest.MonkeyPatch, syncfs_usable: bool) -> tuple[list[str], list[int]]:
    """(folders os.fsync is called on, syncfs calls) from now; syncfs made unusable when asked."""
    from connectors.repositories import fs_durable

    folders: list[str] = []
    syncfs_calls: list[int] = []
    real_fsync, real_syncfs = os.fsync, fs_durable._syncfs()

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            folders.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def syncfs(fd: int) -> int:
        syncfs_calls.append(fd)
        return real_syncfs(fd)  # type: ignore[misc]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(fs_durable, "_syncfs", lambda: syncfs if syncfs_usable else None)
    return folders, syncfs_calls


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs and /proc/self/fd are Linux's")
def test_a_batch_makes_its_new_folders_durable_with_one_sync_of_the_file_system(
    repo: FilesystemRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two packages of three folders each put in one batch: no folder is fsynced by itself, one
    syncfs covers them all when the block ends, and not before."""
    from connectors.repositories import fs_durable

    if fs_durable._syncfs() is None:
        pytest.skip("this kernel's syncfs does not report write errors (Linux < 5.8)")
    folders, syncs = _folder_syncs(monkeypatch, syncfs_usable=True)
    with repo.batch():
        for n in (1, 2):
            for sub in ("申报材料", "结果材料"):
                repo.put_bytes(f"Z109/2026/Y/Z109-WS·2026·Y·XK-000{n}/{sub}/01.pdf", b"%PDF-1.7 " + bytes([n]) * 100)
        assert syncs == []  # deferred to the end of the block
    assert len(syncs) == 1 and folders == []
    assert sorted(p.relative_to(repo.root).as_posix() for p in repo.root.rglob("01.pdf")) == [
        f"Z109/2026/Y/Z109-WS·2026·Y·XK-000{n}/{sub}/01.pdf" for n in (1, 2) for sub in ("申报材料", "结果材料")
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd is Linux's")
def test_without_syncfs_a_batch_fsyncs_every_folder_it_changed_children_first(
    repo: FilesystemRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders, syncs = _folder_syncs(monkeypatch, syncfs_usable=False)
    with repo.batch():
        repo.put_bytes(f"{PKG}/申报材料/01.pdf", b"%PDF-1.7 one")
        assert folders == []
    relative = [Path(f).relative_to(repo.root.resolve()).as_posix() if f != str(repo.root.resolve()) else "."
                for f in folders]
    made = [f"{PKG}/申报材料", PKG, "Z109/2026/D30", "Z109/2026", "Z109", "."]  # each new folder and the root
    assert syncs == [] and sorted(relative) == sorted(made)
    assert relative.index(f"{PKG}/申报材料") < relative.index(PKG) < relative.index(".")
