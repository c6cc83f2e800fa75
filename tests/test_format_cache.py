"""The PRONOM pattern analysis kept between processes (packager/format_cache.py): a matcher built from
the file identifies exactly as one that analysed every pattern, the file is written once and read
by the next process, and a damaged or unwritable cache only costs the analysis again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from guidang_demo.ofds import make_ofd
from guidang_demo.pdfs import make_pdf
from packager import format_id
from packager.format_cache import PatternFactsCache, cache_file

SAMPLES = {
    "pdf": make_pdf(["决定书"]),
    "ofd": make_ofd(["决定书"]),
    "zip": b"PK\x03\x04" + b"\x00" * 200,
    "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
    "text": "这是一段纯文本\n".encode() * 20,
}


def identified(matcher: format_id._Matcher) -> dict[str, list[str]]:
    return {name: sorted(f.find("puid").text for f in matcher.match(data[:format_id.BUFFER_SIZE],
                                                                     data[-format_id.BUFFER_SIZE:]))
            for name, data in SAMPLES.items()}


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GUIDANG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_matcher_from_the_file_identifies_as_one_that_analysed_every_pattern(cache_dir: Path) -> None:
    analysed = format_id._Matcher()  # no file yet: analyses every pattern, then writes the file
    path = cache_file()
    assert path.parent == cache_dir and path.stat().st_size > 0
    cache = PatternFactsCache()
    assert len(cache.known) > 1000 and cache.analysed == 0
    written = path.stat().st_mtime_ns
    from_file = format_id._Matcher()
    assert path.stat().st_mtime_ns == written  # nothing new to analyse: not rewritten
    assert identified(from_file) == identified(analysed)
    assert identified(from_file)["pdf"]  # a real answer compared, not two empty ones
    assert from_file.by_anchor == analysed.by_anchor and from_file.anywhere == analysed.anywhere


def test_a_damaged_cache_is_ignored_and_replaced(cache_dir: Path) -> None:
    expected = identified(format_id._Matcher())
    cache_file().write_bytes(b"\x00not marshal at all")
    assert PatternFactsCache().known == {}
    assert identified(format_id._Matcher()) == expected
    assert len(PatternFactsCache().known) > 1000  # written again by the matcher that analysed


def test_an_unwritable_cache_folder_costs_the_analysis_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("GUIDANG_CACHE_DIR", str(blocker / "cache"))
    assert identified(format_id._Matcher())["pdf"]


def test_the_next_process_reads_the_file(cache_dir: Path) -> None:
    format_id._Matcher()
    probe = ("from packager.format_cache import PatternFactsCache; from packager import format_id; "
             "c = PatternFactsCache(); print(len(c.known), c.analysed)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120,
                         env={"GUIDANG_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}).stdout.split()
    assert int(out[0]) > 1000 and out[1] == "0"
