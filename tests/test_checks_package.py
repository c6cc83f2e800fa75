"""check_package (接收检测) over real package folders: each tampering is caught under its DA/T 70
item code, and a carefully forged package (metadata and manifests made to agree) still fails on
what the content itself is."""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path

import pytest
from lxml import etree

from guidang_demo.pdfs import make_pdf
from packager.check_report import Status, validate_check_report
from packager.checks import check_package
from packager.quarantine_error import QuarantineError
from schemas.layout import CHECK_REPORT_FILE, MANIFEST_SHA256, METADATA_FILE
from schemas.model import ProcessStep
from tests.pdf_support import make_encrypted_pdf, make_javascript_pdf
from tests.test_packager_support import (
    build,
    default_steps,
    doc,
    edit_metadata,
    finalize,
    good_documents,
    make_matter,
    replace_document,
    sha256,
    stage,
)

QUICK_SKIPPED = {"GD-1-1", "GD-1-2", "GD-1-6", "GD-3-3", "GD-4-1", "GD-4-3"}


def failed(folder: Path, **kw: object) -> set[str]:
    return {i.code for i in check_package(folder, **kw).failed_items}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return build(tmp_path).folder


def test_good_package_passes_both_levels(package: Path) -> None:
    full = check_package(package)
    assert full.passed and full.failed_items == []
    codes = [i.code for i in full.items]
    assert codes == sorted(codes, key=lambda c: tuple(map(int, c[3:].split("-"))))
    assert len(full.items) == 18
    quick = check_package(package, level="quick")
    assert quick.passed
    assert {i.code for i in quick.items if i.status == Status.NOT_PERFORMED} >= QUICK_SKIPPED - {"GD-4-1"}
    assert validate_check_report(full.to_xml()) == []
    assert validate_check_report(quick.to_xml()) == []
    json.dumps(full.to_dict(), ensure_ascii=False)


def test_tampered_document_fails_fixity(package: Path) -> None:
    rel = "过程材料/现场核查记录.pdf"
    data = bytearray((package / rel).read_bytes())
    assert data[:8] == b"%PDF-1.3"
    data[7] = ord("4")  # same size, same format, still opens: the digests tell, and PRONOM (PDF 1.4 now)
    (package / rel).write_bytes(bytes(data))
    report = check_package(package)
    assert {i.code for i in report.failed_items} == {"GD-1-1", "GD-1-2", "GD-1-3"}
    assert [f.message for f in report.item("GD-1-3").findings] == [
        "PRONOM标识 says fmt/17, the content is fmt/18"]
    assert {f.where for f in report.item("GD-1-1").findings} == {rel}
    assert {f.where for f in report.item("GD-1-2").findings} == {rel}
    # the quick level does not hash, but PRONOM identification reads only the head and tail
    assert failed(package, level="quick") == {"GD-1-3"}


def test_source_digests_are_the_reference_when_given(package: Path) -> None:
    rel = "申报材料/营业执照.pdf"
    good = sha256((package / rel).read_bytes())
    assert failed(package, source_digests={rel: good}) == set()
    assert failed(package, source_digests={rel: "sha256:" + "0" * 64}) == {"GD-1-1"}
    assert failed(package, source_digests={rel: "sm3:" + "0" * 64}) == {"GD-1-1"}
    assert failed(package, source_digests={"申报材料/另一份.pdf": good}) == {"GD-1-1"}


def test_missing_decision_step_fails_process_integrity(tmp_path: Path) -> None:
    steps = [s for s in default_steps() if s.name != "决定"]
    matter, contents = make_matter(steps=steps)
    staged = stage(tmp_path, matter, contents)
    with pytest.raises(QuarantineError) as err:
        finalize(staged)
    assert err.value.codes == {"Q-CHECK-FAILED", "GD-2-4"}
    result = finalize(staged, check_warnings=["GD-2-4"])
    assert failed(result.folder) == {"GD-2-4"}
    assert "决定" in check_package(result.folder).item("GD-2-4").findings[0].message


def test_no_steps_at_all_fails_process_integrity(tmp_path: Path) -> None:
    matter, contents = make_matter(steps=[ProcessStep(name="申请")])
    result = finalize(stage(tmp_path, matter, contents), check_warnings=["GD-2-4"])
    assert len(check_package(result.folder).item("GD-2-4").findings) == 2


def test_encrypted_pdf_fails_readability(package: Path) -> None:
    replace_document(package, "结果材料/准予许可决定书.pdf", make_encrypted_pdf(["decision"]))
    report = check_package(package)
    assert {i.code for i in report.failed_items} == {"GD-3-3"}
    assert report.item("GD-3-3").findings[0].where == "结果材料/准予许可决定书.pdf"


def test_javascript_pdf_fails_active_content(package: Path) -> None:
    replace_document(package, "申报材料/营业执照.pdf", make_javascript_pdf(["licence"]), pages=1)
    report = check_package(package)
    assert {i.code for i in report.failed_items} == {"GD-4-3"}
    assert "JavaScript" in report.item("GD-4-3").findings[0].message


def test_stray_file_fails_no_extraneous_files(package: Path) -> None:
    (package / "notes.txt").write_text("left behind\n")
    assert failed(package) == {"GD-4-2"}
    (package / "notes.txt").unlink()
    (package / "tmp").mkdir()
    assert failed(package) == {"GD-4-2"}


def test_extra_document_in_a_group_folder_is_caught(package: Path) -> None:
    (package / "申报材料" / "extra.pdf").write_bytes(make_pdf(["smuggled"]))
    assert failed(package) == {"GD-4-2", "GD-2-1", "GD-2-2"}


def test_symlink_is_refused(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "outside.txt"
    target.write_text("outside")
    os.symlink(target, package / "link.txt")
    assert failed(package) == {"GD-4-2"}


@pytest.mark.parametrize("code", ["Z109/WS/2026/D30/SJ/0001", "Z109-WS·2026·D30·SJ-1", "Z109-WS·2026·D30·SJ-00A1"])
def test_malformed_archival_code(package: Path, code: str) -> None:
    edit_metadata(package, lambda root: setattr(root.find("档号/完整档号"), "text", code))
    assert failed(package) == {"GD-1-4"}


def test_archival_code_disagreeing_with_its_parts(package: Path) -> None:
    edit_metadata(package, lambda root: setattr(root.find("档号/完整档号"), "text", "Z109-WS·2025·D30·SJ-0002"))
    report = check_package(package)
    assert {i.code for i in report.failed_items} == {"GD-1-4"}
    assert [f.message.split()[0] for f in report.item("GD-1-4").findings] == ["年度", "件号"]


def test_fonds_template_is_honoured(package: Path) -> None:
    edit_metadata(package, lambda root: setattr(root.find("档号/完整档号"), "text", "Z109·2026·D30-WS-SJ-00001"))
    assert failed(package) == {"GD-1-4"}
    assert failed(package, archival_code_template="{fonds}·{year}·{period}-{category}-{org}-{item:05d}") == set()


def test_unsupported_format(tmp_path: Path) -> None:
    exe = b"MZ\x90\x00\x03" + bytes(300)
    documents = [*good_documents(), doc("申报材料", "setup.exe", exe, media_type="application/x-msdownload")]
    matter, contents = make_matter(documents)
    result = finalize(stage(tmp_path, matter, contents), check_warnings={"GD-3-2"})
    report = check_package(result.folder)
    assert {i.code for i in report.failed_items} == {"GD-3-2"}
    assert "EXE" in report.item("GD-3-2").findings[0].message


def test_missing_document(package: Path) -> None:
    (package / "申报材料" / "申请书.pdf").unlink()
    codes = failed(package)
    assert "GD-2-5" in codes
    assert codes == {"GD-2-5", "GD-2-1", "GD-2-2", "GD-1-2"}


def test_empty_document(package: Path) -> None:
    replace_document(package, "申报材料/申请书.pdf", b"")
    assert "GD-2-5" in failed(package)


def test_not_in_scope(package: Path) -> None:
    edit_metadata(package, lambda root: setattr(root.find("保管信息/归档范围"), "text", "不归档"))
    assert failed(package) == {"GD-2-6"}


def test_missing_mandatory_element(package: Path) -> None:
    def drop(root: etree._Element) -> None:
        desc = root.find("内容描述")
        desc.remove(desc.find("责任者"))
    edit_metadata(package, drop)
    report = check_package(package)
    assert {i.code for i in report.failed_items} == {"GD-2-3", "GD-3-1"}
    assert [f.where for f in report.item("GD-2-3").findings] == ["元数据.xml/内容描述/责任者"]


def test_duplicated_entry(package: Path) -> None:
    def dup(root: etree._Element) -> None:
        files = root.find("文件信息")
        files.append(copy.deepcopy(files[0]))
        root.find("形式特征/件数").text = "5"
    edit_metadata(package, dup)
    assert "GD-1-5" in failed(package)


def test_metadata_size_lie(package: Path) -> None:
    edit_metadata(package, lambda root: setattr(root.find("文件信息/文件/大小"), "text", "1"))
    codes = failed(package)
    assert "GD-1-3" in codes and "GD-2-2" in codes


def test_unreadable_metadata(package: Path) -> None:
    (package / METADATA_FILE).write_bytes(b"<not xml")
    report = check_package(package)
    assert "GD-3-1" in {i.code for i in report.failed_items}
    assert report.item("GD-2-4").status == Status.NOT_PERFORMED
    assert validate_check_report(report.to_xml()) == []


def test_manifest_line_removed(package: Path) -> None:
    path = package / MANIFEST_SHA256
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[1:]), encoding="utf-8")
    codes = failed(package)
    assert codes == {"GD-1-2"}
    assert failed(package, level="quick") == {"GD-1-2"}


def test_manifest_dangerous_path(package: Path) -> None:
    with (package / MANIFEST_SHA256).open("a", encoding="utf-8") as fh:
        fh.write("0" * 64 + "  ../../etc/passwd\n")
    assert failed(package) == {"GD-1-2"}


def test_report_of_a_finished_package_is_allowed_and_read_only_files_are_fine(package: Path) -> None:
    assert (package / CHECK_REPORT_FILE).exists()
    for p in package.rglob("*"):
        if p.is_file():
            p.chmod(stat.S_IRUSR)
    assert failed(package) == set()


