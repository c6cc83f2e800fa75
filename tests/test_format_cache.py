"""The PRONOM matcher's tables kept between processes (packager/format_cache.py): a matcher from the
file identifies exactly as one built from FIDO's signature files, the file is written once and read
by the next process without FIDO's parser, and a damaged, foreign or unwritable cache only costs
building the tables again."""

from __future__ import annotations

import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from guidang_demo.ofds import make_ofd
from guidang_demo.pdfs import make_pdf
from packager import format_cache, format_id

SAMPLES = {
    "pdf": make_pdf(["决定书"]),
    "ofd": make_ofd(["决定书"]),
    "zip": b"PK\x03\x04" + b"\x00" * 200,
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
    "text": "这是一段纯文本\n".encode() * 20,
}


def identified(matcher: format_id._Matcher) -> dict[str, list[str]]:
    return {name: sorted(m.puid for m in matcher.match(data[:format_id.BUFFER_SIZE], data[-format_id.BUFFER_SIZE:]))
            for name, data in SAMPLES.items()}


def the_file() -> Path:
    from fido import CONFIG_DIR

    return format_cache.cache_file(format_id._table_sources(Path(CONFIG_DIR)))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GUIDANG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_matcher_from_the_file_identifies_as_one_built_from_fido(cache_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    built = format_id._Matcher()  # no file yet: built from FIDO's files, then written
    path = the_file()
    assert path.parent == cache_dir and path.stat().st_size > 0
    written = path.stat().st_mtime_ns

    def no_fido() -> None:
        raise AssertionError("the tables were built again although the file holds them")

    monkeypatch.setattr(format_id, "_tables_from_fido", no_fido)
    from_file = format_id._Matcher()
    assert path.stat().st_mtime_ns == written  # read, not rewritten
    assert identified(from_file) == identified(built)
    assert identified(from_file)["pdf"] and identified(from_file)["ofd"]  # real answers compared, not empty ones
    assert from_file.formats[0][0] == built.formats[0][0] and len(from_file.formats) == len(built.formats) > 1500
    assert from_file.by_anchor == built.by_anchor and from_file.anywhere == built.anywhere
    assert from_file.priority == built.priority and from_file.beaten_by == built.beaten_by


@pytest.mark.parametrize("damage", [
    b"\x00not marshal at all",
    marshal.dumps(([("fmt/17", "PDF", None, None, ("pdf",), ())], [5], {}, {})),  # an index out of range
    marshal.dumps(({"formats": []}, [], {}, {})),  # not the shape at all
    marshal.dumps((1, 2, 3)),
])
def test_a_damaged_cache_is_ignored_and_replaced(cache_dir: Path, damage: bytes) -> None:
    expected = identified(format_id._Matcher())
    path = the_file()
    path.write_bytes(damage)
    assert format_cache.load(path) is None
    assert identified(format_id._Matcher()) == expected
    assert format_cache.load(path) is not None  # written again by the matcher that built the tables


def test_another_pronom_release_reads_another_file(tmp_path: Path, cache_dir: Path) -> None:
    from fido import CONFIG_DIR

    files = format_id._table_sources(Path(CONFIG_DIR))
    signatures = next(i for i, f in enumerate(files) if f.name.startswith("formats-v"))
    newer = tmp_path / files[signatures].name
    newer.write_bytes(files[signatures].read_bytes().replace(b"</formats>", b"<!-- a newer release --></formats>"))
    assert format_cache.cache_file(files) != format_cache.cache_file(
        [*files[:signatures], newer, *files[signatures + 1:]])


def test_an_unwritable_cache_folder_costs_the_build_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("GUIDANG_CACHE_DIR", str(blocker / "cache"))
    assert identified(format_id._Matcher())["pdf"]


def test_the_next_process_reads_the_file_without_parsing_fidos_signatures(cache_dir: Path) -> None:
    format_id._Matcher()
    probe = ("import sys; from packager import format_id; m = format_id._matcher(); "
             "print(len(m.formats), 'fido.fido' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120,
                         env={"GUIDANG_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert int(out[0]) > 1500 and out[1] == "False"
