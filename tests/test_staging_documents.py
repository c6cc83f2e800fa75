"""Hostile documents at staging: names the file system cannot hold or that collide, content that is
not what its name says, and documents too large to be held in memory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from guidang_demo.pdfs import make_pdf
from packager.checks import check_package
from packager.quarantine_error import QuarantineError
from packager.stage import staging_folder
from schemas.layout import METADATA_FILE
from tests.test_packager_support import doc, finalize, good_documents, make_matter, stage

ROOT = Path(__file__).resolve().parent.parent
NAME_MAX = 255  # bytes per path segment (ext4 and most Linux file systems)


def _files_on_disk(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _entries(folder: Path) -> list[dict[str, str | None]]:
    root = etree.parse(str(folder / METADATA_FILE)).getroot()
    return [
        {tag: f.findtext(tag) for tag in ("材料类别", "文件名", "原文件名", "相对路径", "SHA-256")}
        for f in root.findall("文件信息/文件")
    ]


# -- names ---------------------------------------------------------------------------------

LONG_NAME = ("关于申请食品经营许可的情况说明" * 67)[:994] + "补充.pdf"  # 1,000 characters, ~3,000 bytes


def test_a_1000_character_name_is_archived_under_a_shortened_name_recording_the_original(tmp_path: Path) -> None:
    assert len(LONG_NAME) == 1000
    data = make_pdf(["long name"])
    matter, contents = make_matter([*good_documents(), doc("申报材料", LONG_NAME, data, title="情况说明")])
    result = finalize(stage(tmp_path, matter, contents))
    assert result.passed

    entry = next(e for e in _entries(result.folder) if e["原文件名"] is not None)
    stored = entry["文件名"] or ""
    assert entry["原文件名"] == LONG_NAME
    assert entry["相对路径"] == f"申报材料/{stored}"
    assert len(stored.encode("utf-8")) <= NAME_MAX
    assert stored.endswith(".pdf") and LONG_NAME.startswith(stored.removesuffix(".pdf"))
    assert (result.folder / "申报材料" / stored).read_bytes() == data
    # names that fit are recorded as they are, without an 原文件名
    assert sum(e["原文件名"] is None for e in _entries(result.folder)) == 4
    assert check_package(result.folder).passed


def test_two_documents_with_the_same_name_in_a_folder_are_both_archived(tmp_path: Path) -> None:
    first, second, third = make_pdf(["first"]), make_pdf(["second"]), make_pdf(["third"])
    documents = [
        doc("申报材料", "身份证明.pdf", first, title="法定代表人身份证明"),
        doc("申报材料", "身份证明.pdf", second, title="委托代理人身份证明", locator="loc:second"),
        doc("申报材料", "身份证明.PDF", third, title="股东身份证明", locator="loc:third"),  # same on a caseless disk
        doc("结果材料", "身份证明.pdf", first, title="another folder: no collision"),
    ]
    matter, contents = make_matter(documents)
    result = finalize(stage(tmp_path, matter, contents))
    assert result.passed

    entries = _entries(result.folder)
    on_disk = _files_on_disk(result.folder)
    assert len(entries) == 4
    paths = [e["相对路径"] for e in entries]
    assert len({(p or "").casefold() for p in paths}) == 4
    assert paths[0] == "申报材料/身份证明.pdf" and entries[0]["原文件名"] is None
    assert paths[3] == "结果材料/身份证明.pdf" and entries[3]["原文件名"] is None
    for entry, (d, data) in zip(entries, documents, strict=True):
        assert on_disk[entry["相对路径"] or ""] == data
        assert (entry["原文件名"] or entry["文件名"]) == d.file_name
    assert entries[1]["原文件名"] == "身份证明.pdf" and entries[1]["文件名"] != "身份证明.pdf"
    assert (entries[1]["文件名"] or "").endswith(".pdf") and (entries[2]["文件名"] or "").endswith(".PDF")
    assert check_package(result.folder).passed


def test_rebuilding_a_matter_with_renamed_documents_gives_identical_bytes(tmp_path: Path) -> None:
    data = make_pdf(["x"])
    documents = [doc("申报材料", "a.pdf", data), doc("申报材料", "a.pdf", make_pdf(["y"]), locator="loc:y"),
                 doc("申报材料", "a(2).pdf", make_pdf(["z"])), doc("过程材料", LONG_NAME, data)]
    matter, contents = make_matter(documents)
    first = _files_on_disk(finalize(stage(tmp_path / "one", matter, contents)).folder)
    again = _files_on_disk(finalize(stage(tmp_path / "one", matter, contents)).folder)
    elsewhere = _files_on_disk(finalize(stage(tmp_path / "two", matter, contents)).folder)
    assert first == again == elsewhere
    assert len([p for p in first if p.startswith(("申报材料/", "过程材料/"))]) == 4


def test_unsafe_names_are_still_refused_beside_renamed_ones(tmp_path: Path) -> None:
    data = make_pdf(["x"])
    matter, contents = make_matter([doc("申报材料", "a.pdf", data), doc("申报材料", "a.pdf", data),
                                    doc("申报材料", "../a.pdf", data), doc("申报材料", "/abs.pdf", data)])
    with pytest.raises(QuarantineError) as err:
        stage(tmp_path, matter, contents)
    assert err.value.codes == {"Q-DOC-UNSAFE-NAME"}


# -- formats and bounded memory ------------------------------------------------------------

def _zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("inner.txt", "hello")
    return out.getvalue()


@pytest.mark.parametrize(("name", "data", "media_type", "what"), [
    ("决定书.pdf", _zip_bytes(), "application/pdf", "ZIP"),
    ("决定书.pdf", b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "application/pdf", "HTML"),
    ("照片.jpg", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/jpeg", "PNG"),
])
def test_content_that_is_not_what_its_name_says_is_a_format_mismatch_naming_both(
    tmp_path: Path, name: str, data: bytes, media_type: str, what: str
) -> None:
    matter, contents = make_matter([doc("申报材料", name, data, media_type=media_type)])
    with pytest.raises(QuarantineError) as err:
        stage(tmp_path, matter, contents)
    assert err.value.codes == {"Q-FORMAT-MISMATCH"}
    message = err.value.findings[0].message
    claimed = name.rsplit(".", 1)[1].upper().replace("JPG", "JPEG")
    assert what in message and f"name says {claimed}" in message
    assert name in err.value.findings[0].where
    assert not staging_folder(tmp_path / "staging", matter).exists()


def test_an_ofd_or_docx_is_a_zip_container_and_no_mismatch(tmp_path: Path) -> None:
    matter, contents = make_matter([*good_documents(),
                                    doc("申报材料", "附件.docx", _zip_bytes(), media_type="application/octet-stream")])
    staged = stage(tmp_path, matter, contents)
    assert {d.format.name for d in staged.documents} == {"PDF", "DOCX"}


_CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    from packager.quarantine_error import QuarantineError
    from packager.stage import stage_matter
    from tests.test_packager_support import appraisal, doc, finalize, make_matter

    big, size, name = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with big.open("wb") as fh:  # sparse: a header and then nothing but a hole
        fh.write(bytes.fromhex(sys.argv[4]))
        fh.truncate(size)

    def chunks(document):
        with big.open("rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    matter, _ = make_matter([doc("申报材料", name, b"", declare=False)])
    started = time.monotonic()
    out = {}
    try:
        staged = stage_matter(matter, appraisal(), chunks, big.parent / "staging")
        out["codes"] = []
        out["passed"] = finalize(staged).passed
    except QuarantineError as exc:
        out["codes"] = sorted(exc.codes)
        out["messages"] = [f.message for f in exc.findings]
    out["seconds"] = time.monotonic() - started
    # VmHWM is this process's own peak; ru_maxrss carries the parent's peak across fork+exec on Linux,
    # so it measured pytest's size, not staging's, once the suite had loaded enough.
    status = Path("/proc/self/status")
    hwm = [l for l in status.read_text().splitlines() if l.startswith("VmHWM:")] if status.exists() else []
    out["max_rss_mb"] = (int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
    print(json.dumps(out))
""")


@pytest.mark.parametrize(("name", "header", "expected"), [
    ("扫描件.pdf", b"%PDF-1.7\n", {"Q-PDF-TOO-LARGE"}),  # a PDF header followed by 600 MB of zeros
    ("扫描件.pdf", b"", {"Q-PDF-BROKEN"}),  # no PDF header at all
    ("现场录像.mp4", b"\x00\x00\x00\x18ftypmp42", set()),  # not a PDF: staged, packaged and checked
])
def test_a_600_mb_document_is_staged_and_inspected_in_bounded_memory(
    tmp_path: Path, name: str, header: bytes, expected: set[str]
) -> None:
    big = tmp_path / "source.bin"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(big), str(600 * 1024 * 1024), name, header.hex()],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out["codes"]) == expected, out
    assert out.get("passed", True), out
    assert out["max_rss_mb"] < 300, out
    assert time.monotonic() - started < 120, out
    if expected:  # a quarantined matter leaves nothing behind
        assert not any(p.is_file() for p in (tmp_path / "staging").rglob("*"))
    print(out)


def test_the_pdf_parse_limit_comes_from_the_configuration(tmp_path: Path) -> None:
    """`pdf_parse_limit_mb` in guidang.yaml decides what a night's staging parses (a 2 MiB PDF is
    refused under 1 MiB and archived under 8), and the package built from it passes its check."""
    from types import SimpleNamespace

    from night.staging import stage_documents
    from packager.content import content_options
    from packager.package import finalize_package
    from packager.quarantine_error import QuarantineError as Quarantined
    from schemas.config import SignatureConfig
    from tests.test_packager_support import ARCHIVED_AT, FONDS, appraisal, archival_code, doc, make_matter, opener

    big = make_pdf(["big scan"], pages=1) + b"%" + b"0" * (2 * 2**20) + b"\n"  # a valid PDF padded past 2 MiB
    matter, contents = make_matter([doc("结果材料", "扫描件.pdf", big)])

    def ctx(limit_mb: int) -> SimpleNamespace:
        root = tmp_path / f"staging-{limit_mb}"
        root.mkdir()
        settings = SimpleNamespace(pdf_parse_limit_mb=limit_mb, virus_scan=None, signatures=SignatureConfig(),
                                   required_checks=None)
        return SimpleNamespace(settings=settings, staging_root=root,  # night.context.RunContext's
                               content_options=lambda: content_options(settings))

    with pytest.raises(Quarantined) as refused:
        stage_documents(ctx(1), matter, appraisal(), opener(contents))
    assert {f.code for f in refused.value.findings} == {"Q-PDF-TOO-LARGE"}

    staged = stage_documents(ctx(8), matter, appraisal(), opener(contents))
    result = finalize_package(
        staged, fonds=FONDS, archival_code=archival_code(), item_number=1, archived_at=ARCHIVED_AT
    )
    assert result.passed and result.report.item("GD-3-3").status == "pass"
