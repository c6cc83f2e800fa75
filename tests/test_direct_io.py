"""Documents are written to and read back from the medium (O_DIRECT) where the file system allows
it, and byte for byte as they would be through the page cache everywhere (guidang_io/direct_io.py);
staging inspects the bytes it kept in memory exactly as it would the file (packager/held.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import random
from pathlib import Path

import pytest

from guidang_io import direct_io
from guidang_io.block_reads import digest_file, sha256_file
from guidang_io.direct_io import ALIGN, BUFFER, DirectWriter, read_blocks
from packager.held import Held
from packager.pdf import inspect_pdf

SIZES = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 12345]


def _write(path: Path, data: bytes, rng: random.Random) -> DirectWriter:
    with DirectWriter(path) as out:
        i = 0
        while i < len(data):  # pieces of every size, as a source delivers them
            n = rng.choice([1, 700, ALIGN, 65536, BUFFER, 2 * BUFFER + 3])
            out.write(data[i:i + n])
            i += n
    return out


@pytest.mark.parametrize("size", SIZES)
def test_a_written_file_holds_exactly_the_bytes_and_reads_back_the_same(tmp_path: Path, size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    path = tmp_path / "scan.pdf"
    out = _write(path, data, rng)
    assert out.size == size
    assert path.stat().st_size == size  # the padding of the last block is cut off
    assert path.read_bytes() == data
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), size)
    assert b"".join(bytes(b) for b in read_blocks(path)) == data
    sm3 = hashlib.new("sm3")
    sm3.update(data)
    assert digest_file(path).sm3 == sm3.hexdigest()


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        DirectWriter(path)
    assert path.read_bytes() == b"kept"


def test_a_file_system_that_refuses_direct_io_gets_the_same_bytes_buffered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def refusing(path: object, flags: int, *args: object) -> int:
        if flags & direct_io._O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing)
    data = random.Random(7).randbytes(BUFFER + 999)
    path = tmp_path / "scan.pdf"
    out = _write(path, data, random.Random(7))
    assert not out.direct
    assert path.read_bytes() == data
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_refused_first_write_falls_back_and_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write, calls = os.write, []

    def refusing_first(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refusing_first)
    data = random.Random(8).randbytes(2 * BUFFER + 5)
    path = tmp_path / "scan.pdf"
    out = _write(path, data, random.Random(8))
    assert not out.direct and len(calls) > 1 and out.direct_bytes == 0
    assert path.read_bytes() == data


def test_kept_blocks_read_like_the_file(tmp_path: Path) -> None:
    data = random.Random(9).randbytes(3 * 70000 + 17)
    held = Held()
    blocks = [data[i:i + 70000] for i in range(0, len(data), 70000)]
    assert list(held.keep(blocks)) == blocks
    assert held.head(64) == data[:64] and held.tail(100000) == data[-100000:]
    reader = held.reader()
    assert reader is not None and reader.read() == data
    reader.seek(123456)
    assert reader.read(5000) == data[123456:128456]
    reader.seek(-40, os.SEEK_END)
    assert reader.read() == data[-40:]


def test_a_document_over_the_limit_is_not_kept() -> None:
    held = Held(limit=1000)
    assert b"".join(held.keep([b"a" * 600, b"b" * 600])) == b"a" * 600 + b"b" * 600
    assert held.reader() is None and held.head(10) is None and held.size == 1200


@pytest.mark.parametrize("block", [1000, 1 << 20])  # many blocks, or the whole document in one
def test_pypdf_finds_the_same_in_kept_blocks_as_in_the_file(tmp_path: Path, block: int) -> None:
    from tests.pdf_support import make_javascript_pdf

    path = tmp_path / "scan.pdf"
    path.write_bytes(make_javascript_pdf(["申请表", "第二行"]))
    data = path.read_bytes()
    held = Held()
    list(held.keep([data[i:i + block] for i in range(0, len(data), block)]))
    from_file, from_memory = inspect_pdf(path), inspect_pdf(path, held=held.reader())
    assert from_memory == from_file and from_file.pages == 1 and from_file.active_content


def test_large_files_go_past_the_page_cache_and_small_ones_through_it(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | direct_io._O_DIRECT, 0o644))
    except OSError:
        pytest.skip("this file system refuses O_DIRECT")
    if not direct_io._O_DIRECT:
        pytest.skip("no O_DIRECT on this platform")
    rng = random.Random(10)
    large = _write(tmp_path / "scan.pdf", rng.randbytes(direct_io.DIRECT_MIN + 1), rng)
    small = _write(tmp_path / "元数据.xml", rng.randbytes(direct_io.DIRECT_MIN - 1), rng)
    assert large.direct_bytes == direct_io.DIRECT_MIN and small.direct_bytes == 0  # the last byte: cached
