"""stage_matter + finalize_package: the package a good matter becomes, and every way a bad one is
quarantined before it can consume a 件号."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from pypdf import PdfWriter

from guidang_demo.pdfs import make_broken_pdf, make_pdf
from packager.check_report import CheckReport, Status, validate_check_report
from packager.checks import renumbered
from packager.package import PackageResult
from packager.quarantine_error import QuarantineError
from packager.stage import StagedMatter, stage_matter, staging_folder
from schemas.errors import SourceUnavailable
from schemas.layout import CHECK_REPORT_FILE, MANIFEST_SHA256, MANIFEST_SM3, METADATA_FILE
from schemas.metadata import build_metadata, validate_metadata
from schemas.model import Document, DocumentGroup
from schemas.xmlio import parse_xml
from tests.pdf_support import make_encrypted_pdf, make_javascript_pdf
from tests.test_packager_support import (
    ARCHIVED_AT,
    CARD,
    FONDS,
    appraisal,
    archival_code,
    build,
    doc,
    finalize,
    good_documents,
    make_matter,
    opener,
    sha256,
    sm3,
    stage,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def _files_on_disk(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _manifest(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, rel = line.split("  ", 1)
        out[rel] = digest
    return out


def test_good_matter_becomes_a_valid_package(tmp_path: Path) -> None:
    documents = good_documents()
    matter, contents = make_matter(documents)
    result = finalize(stage(tmp_path, matter, contents))
    assert result.passed
    on_disk = _files_on_disk(result.folder)

    # documents byte-identical to the source, in their group folders
    for d, data in documents:
        assert on_disk[f"{d.group.value}/{d.file_name}"] == data
    expected_listed = {f"{d.group.value}/{d.file_name}" for d, _ in documents} | {METADATA_FILE}
    assert set(on_disk) == expected_listed | {MANIFEST_SM3, MANIFEST_SHA256, CHECK_REPORT_FILE}

    # manifests: every document and 元数据.xml, digests as hashlib computes them, sorted by path
    for name, fn in ((MANIFEST_SHA256, sha256), (MANIFEST_SM3, sm3)):
        manifest = _manifest(result.folder / name)
        assert set(manifest) == expected_listed
        assert manifest == {rel: fn(on_disk[rel]) for rel in expected_listed}
        assert list(manifest) == sorted(manifest)

    # PackageResult.files describes every file exactly
    assert [f.path for f in result.files] == sorted(on_disk)
    for f in result.files:
        assert (f.size, f.sha256, f.sm3) == (len(on_disk[f.path]), sha256(on_disk[f.path]), sm3(on_disk[f.path]))

    # 元数据.xml validates, with our helper and with a schema loaded here independently
    assert validate_metadata(result.folder / METADATA_FILE) == []
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "metadata.xsd")))
    tree = etree.parse(str(result.folder / METADATA_FILE))
    assert schema.validate(tree), schema.error_log
    root = tree.getroot()
    assert root.findtext("档号/完整档号") == "Z109-WS·2026·D30·SJ-0001"
    assert root.findtext("内容描述/题名") == "食品经营许可（杭州某某餐饮有限公司）"
    assert root.findtext("内容描述/日期") == "20260210"
    assert root.findtext("形式特征/件数") == "4"
    assert root.findtext("形式特征/页数") == "7"
    assert root.findtext("业务信息/申请人/证件号码") == CARD  # the package keeps the real number
    steps = [s.text for s in root.findall("业务信息/办理过程/办理环节/环节名称")]
    assert steps == ["申请", "受理", "审查", "决定", "送达"]
    assert root.findtext("保管信息/规则行号") == "12"
    assert root.findtext("保管信息/到期鉴定日期") == "2056-12-31"

    # the report validates, passed, and holds no personal data
    report = on_disk[CHECK_REPORT_FILE]
    assert validate_check_report(report) == []
    assert etree.fromstring(report).get("结论") == "通过"
    assert CARD.encode() not in report
    assert result.report.item("GD-4-1").status in (Status.NOT_PERFORMED, Status.PASS)


def test_mutated_metadata_fails_validation(tmp_path: Path) -> None:
    result = build(tmp_path)
    data = (result.folder / METADATA_FILE).read_bytes()
    assert validate_metadata(data) == []
    bad = data.replace("<保管期限>D30<".encode(), "<保管期限>D31<".encode(), 1)
    assert bad != data
    findings = validate_metadata(bad)
    assert findings and {f.code for f in findings} == {"Q-METADATA-INVALID"}
    assert validate_metadata(data.replace("<件数>4</件数>".encode(), "<件数>four</件数>".encode()))
    assert validate_metadata(data[: len(data) // 2])  # truncated: not well-formed


def test_refinalize_and_restage_give_identical_bytes(tmp_path: Path) -> None:
    matter, contents = make_matter()
    staged = stage(tmp_path, matter, contents)
    first = finalize(staged)
    bytes_first = _files_on_disk(first.folder)
    second = finalize(staged)
    assert second.files == first.files
    assert _files_on_disk(second.folder) == bytes_first
    # staging again from scratch (a re-run) rebuilds the very same package
    (staging_folder(tmp_path / "staging", matter) / "leftover.tmp").write_bytes(b"half-written")
    third = finalize(stage(tmp_path, matter, contents))
    assert _files_on_disk(third.folder) == bytes_first


def test_excluded_groups_stay_out_and_are_recorded(tmp_path: Path) -> None:
    matter, contents = make_matter()
    a = appraisal(excluded_groups=[DocumentGroup.PROCESS])
    result = finalize(stage(tmp_path, matter, contents, a))
    paths = {f.path for f in result.files}
    assert not any(p.startswith("过程材料/") for p in paths)
    root = etree.parse(str(result.folder / METADATA_FILE)).getroot()
    assert root.findtext("形式特征/件数") == "3"
    assert [e.text for e in root.findall("保管信息/不归档材料类别")] == ["过程材料"]


# -- quarantine at staging: one fixture per code, exact set of codes ------------------------------

def _no_pages_pdf() -> bytes:
    out = io.BytesIO()
    PdfWriter().write(out)
    return out.getvalue()



BAD_INPUTS = {
    "Q-DOC-UNSAFE-NAME-dotdot": (lambda: [doc("申报材料", "../../etc/evil.pdf", make_pdf(["x"]))],
                                 {"Q-DOC-UNSAFE-NAME"}),
    "Q-DOC-UNSAFE-NAME-absolute": (lambda: [doc("申报材料", "/etc/passwd", make_pdf(["x"]))], {"Q-DOC-UNSAFE-NAME"}),
    "Q-DOC-UNSAFE-NAME-windows": (lambda: [doc("申报材料", "C:\\evil.pdf", make_pdf(["x"]))], {"Q-DOC-UNSAFE-NAME"}),
    "Q-DOC-FETCH-FAILED": (lambda: [doc("申报材料", "a.pdf", make_pdf(["x"]), locator="loc:gone")],
                           {"Q-DOC-FETCH-FAILED"}),
    "Q-DOC-DIGEST-MISMATCH": (lambda: [doc("申报材料", "a.pdf", make_pdf(["x"]), source_sha256="0" * 64)],
                              {"Q-DOC-DIGEST-MISMATCH"}),
    "Q-DOC-DIGEST-MISMATCH-sm3": (lambda: [doc("申报材料", "a.pdf", make_pdf(["x"]), source_sm3="f" * 64)],
                                  {"Q-DOC-DIGEST-MISMATCH"}),
    "Q-DOC-SIZE-MISMATCH": (lambda: [doc("申报材料", "a.pdf", make_pdf(["x"]), size=5)], {"Q-DOC-SIZE-MISMATCH"}),
    "Q-PDF-BROKEN": (lambda: [doc("申报材料", "a.pdf", make_broken_pdf(["x"]))], {"Q-PDF-BROKEN"}),
    "Q-PDF-BROKEN-not-a-pdf": (lambda: [doc("申报材料", "a.pdf", b"502 Bad Gateway")], {"Q-PDF-BROKEN"}),
    "Q-FORMAT-MISMATCH-html": (lambda: [doc("申报材料", "a.pdf", b"<html>502 Bad Gateway</html>")],
                               {"Q-FORMAT-MISMATCH"}),
    "Q-PDF-ENCRYPTED": (lambda: [doc("申报材料", "a.pdf", make_encrypted_pdf(["x"]))], {"Q-PDF-ENCRYPTED"}),
    "Q-PDF-NO-PAGES": (lambda: [doc("申报材料", "a.pdf", _no_pages_pdf())], {"Q-PDF-NO-PAGES"}),
    "Q-NO-DOCUMENTS": (lambda: [], {"Q-NO-DOCUMENTS"}),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_quarantined_with_exactly_its_code(tmp_path: Path, case: str) -> None:
    make_docs, expected = BAD_INPUTS[case]
    documents = make_docs()
    matter, contents = make_matter(documents)
    with pytest.raises(QuarantineError) as err:
        stage(tmp_path, matter, contents)
    assert err.value.codes == expected
    for f in err.value.findings:
        assert matter.key in f.where
        if documents:
            assert documents[-1][0].file_name in f.where or repr(documents[-1][0].file_name) in f.where
    assert CARD not in str(err.value)
    assert not staging_folder(tmp_path / "staging", matter).exists()


def test_all_excluded_is_no_documents(tmp_path: Path) -> None:
    matter, contents = make_matter()
    a = appraisal(excluded_groups=list(DocumentGroup))
    with pytest.raises(QuarantineError) as err:
        stage(tmp_path, matter, contents, a)
    assert err.value.codes == {"Q-NO-DOCUMENTS"}


def test_every_problem_of_a_matter_is_reported_at_once(tmp_path: Path) -> None:
    good = make_pdf(["good"])
    documents = [
        doc("申报材料", "ok.pdf", good),
        doc("申报材料", "../up.pdf", good),
        doc("申报材料", "OK.pdf", good),  # same name as ok.pdf: stored as OK(2).pdf, no fault
        doc("过程材料", "gone.pdf", good, locator="loc:gone-too"),
        doc("过程材料", "wrong.pdf", good, source_sha256="a" * 64, size=len(good) + 1),
        doc("结果材料", "locked.pdf", make_encrypted_pdf(["x"])),
        doc("结果材料", "torn.pdf", make_broken_pdf(["x"])),
    ]
    matter, contents = make_matter(documents)
    with pytest.raises(QuarantineError) as err:
        stage(tmp_path, matter, contents)
    by_code = {}
    for f in err.value.findings:
        by_code.setdefault(f.code, []).append(f)
    assert set(by_code) == {
        "Q-DOC-UNSAFE-NAME", "Q-DOC-FETCH-FAILED", "Q-DOC-DIGEST-MISMATCH",
        "Q-DOC-SIZE-MISMATCH", "Q-PDF-ENCRYPTED", "Q-PDF-BROKEN",
    }
    mismatch = by_code["Q-DOC-DIGEST-MISMATCH"][0]
    assert "过程材料/wrong.pdf" in mismatch.where
    assert mismatch.details["expected"] == "a" * 64 and mismatch.details["found"] == sha256(good)
    assert "a" * 64 in mismatch.message and sha256(good) in mismatch.message
    assert by_code["Q-DOC-SIZE-MISMATCH"][0].details == {"path": "过程材料/wrong.pdf", "expected": len(good) + 1,
                                                          "found": len(good)}


def test_source_unavailable_propagates_untouched(tmp_path: Path) -> None:
    matter, contents = make_matter()
    boom = SourceUnavailable("unified system: HTTP 503 after 3 retries")

    def flaky(document: Document) -> Iterator[bytes]:
        if document.group is DocumentGroup.PROCESS:
            yield b"%PDF-1.4 partial"
            raise boom
        yield from opener(contents)(document)

    with pytest.raises(SourceUnavailable) as err:
        stage_matter(matter, appraisal(), flaky, tmp_path / "staging")
    assert err.value is boom
    assert not staging_folder(tmp_path / "staging", matter).exists()


def test_fetch_failure_mid_stream_is_the_matters_fault(tmp_path: Path) -> None:
    from schemas.errors import DocumentUnavailable

    matter, _ = make_matter()

    def truncated(document: Document) -> Iterator[bytes]:
        yield b"%PDF-1.4"
        raise DocumentUnavailable(f"BLOB for {document.file_name} ended early (applicant {CARD})")

    with pytest.raises(QuarantineError) as err:
        stage_matter(matter, appraisal(), truncated, tmp_path / "staging")
    assert err.value.codes == {"Q-DOC-FETCH-FAILED"}
    assert len(err.value.findings) == 4
    assert CARD not in str(err.value)  # identity numbers in a source's message are masked


# -- quarantine at finalize -----------------------------------------------------------------------

def test_metadata_invalid_quarantines_and_writes_nothing(tmp_path: Path) -> None:
    matter, contents = make_matter(region_code="33-01")
    staged = stage(tmp_path, matter, contents)
    with pytest.raises(QuarantineError) as err:
        finalize(staged)
    assert err.value.codes == {"Q-METADATA-INVALID"}
    assert "区划代码" in str(err.value)
    assert not (staged.folder / METADATA_FILE).exists()


def test_active_content_fails_the_check_unless_downgraded(tmp_path: Path) -> None:
    documents = [*good_documents(), doc("申报材料", "带脚本.pdf", make_javascript_pdf(["js"]))]
    matter, contents = make_matter(documents)
    staged = stage(tmp_path, matter, contents)  # staging records it, does not quarantine
    assert {f.code for f in staged.findings} == {"GD-4-3"}
    with pytest.raises(QuarantineError) as err:
        finalize(staged)
    assert err.value.codes == {"Q-CHECK-FAILED", "GD-4-3"}
    assert (staged.folder / CHECK_REPORT_FILE).exists()  # left for inspection
    result = finalize(staged, check_warnings=("GD-4-3",))
    assert result.passed
    item = result.report.item("GD-4-3")
    assert item.status == Status.FAIL and item.warning
    assert [f.where for f in result.findings] == ["申报材料/带脚本.pdf"]
    report = etree.parse(str(result.folder / CHECK_REPORT_FILE)).getroot()
    assert report.get("结论") == "通过"
    assert report.find("检测项目[@代码='GD-4-3']").get("降为警告") == "true"


def test_executable_document_fails_the_format_check(tmp_path: Path) -> None:
    exe = b"MZ\x90\x00\x03" + bytes(200)
    documents = [*good_documents(), doc("申报材料", "setup.exe", exe, media_type="application/x-msdownload")]
    matter, contents = make_matter(documents)
    with pytest.raises(QuarantineError) as err:
        finalize(stage(tmp_path, matter, contents))
    assert err.value.codes == {"Q-CHECK-FAILED", "GD-3-2"}
    assert [f.where for f in err.value.findings if f.code == "GD-3-2"] == ["申报材料/setup.exe"]


def test_a_package_checked_in_memory_is_judged_as_the_written_one_and_leaves_the_folder_as_staged(
    tmp_path: Path,
) -> None:
    """The precheck before numbering builds the package with write=False: the same items must pass
    and fail as on the written package, and staging's folder must hold only the documents after it."""
    documents = [*good_documents(), doc("申报材料", "带脚本.pdf", make_javascript_pdf(["js"]))]
    matter, contents = make_matter(documents)
    staged = stage(tmp_path, matter, contents)
    before = _files_on_disk(staged.folder)

    in_memory = finalize(staged, check_warnings=("GD-4-3",), write=False)
    assert _files_on_disk(staged.folder) == before
    with pytest.raises(QuarantineError) as err:
        finalize(staged, write=False)
    assert err.value.codes == {"Q-CHECK-FAILED", "GD-4-3"}
    assert _files_on_disk(staged.folder) == before

    written = finalize(staged, check_warnings=("GD-4-3",))
    assert [(i.code, i.status, i.warning) for i in in_memory.report.items] == [
        (i.code, i.status, i.warning) for i in written.report.items
    ]
    assert {i.code for i in written.report.items if i.status == Status.PASS} >= {"GD-1-2", "GD-3-1", "GD-4-2"}
    assert {f.path for f in written.files} - {f.path for f in in_memory.files} == {CHECK_REPORT_FILE}


def test_a_package_checked_in_memory_still_fails_on_a_stray_file(tmp_path: Path) -> None:
    matter, contents = make_matter()
    staged = stage(tmp_path, matter, contents)
    (staged.folder / "stray.txt").write_bytes(b"not listed")
    with pytest.raises(QuarantineError) as err:
        finalize(staged, write=False)
    assert "GD-4-2" in err.value.codes


def test_a_transferred_folder_of_links_is_set_aside_and_a_folder_of_copies_is_removed(tmp_path):
    """An archive on the same file system holds the staged bytes (hard links): the folder waits in
    .retired for the run's end. Copies (an S3 archive) must not pile up in staging over a night."""
    import os

    from packager import retire

    linked, copied = tmp_path / "m-linked", tmp_path / "m-copied"
    for folder in (linked, copied):
        folder.mkdir()
        (folder / "1.pdf").write_bytes(b"%PDF-1.7")
    os.link(linked / "1.pdf", tmp_path / "archived.pdf")
    retire(linked, linked / "1.pdf")
    retire(copied, copied / "1.pdf")
    assert not linked.exists() and (tmp_path / ".retired" / "m-linked" / "1.pdf").is_file()
    assert not copied.exists() and not (tmp_path / ".retired" / "m-copied").exists()


@pytest.mark.parametrize("with_rm", [True, False])
def test_the_retired_folders_are_removed_beside_the_caller_and_nothing_else_is(tmp_path, monkeypatch, with_rm):
    """The night's end removes `.retired` while the batches are written (clear_retired); the archive's
    files, of which they are links, and the rest of the staging root stay until the root goes."""
    import os

    from packager.package import RETIRED, clear_retired

    archive = tmp_path / "archive"
    archive.mkdir()
    root = tmp_path / "run"
    for i in range(50):
        folder = root / RETIRED / f"m-{i}" / "材料"
        folder.mkdir(parents=True)
        (folder / "1.pdf").write_bytes(b"%PDF-1.7 " + str(i).encode())
        os.link(folder / "1.pdf", archive / f"{i}.pdf")
    (root / "in-progress").mkdir()
    (root / "in-progress" / "2.pdf").write_bytes(b"%PDF-1.7")
    if not with_rm:
        monkeypatch.setattr("shutil.which", lambda _name: None)
    wait = clear_retired(root)
    wait()
    assert not (root / RETIRED).exists()
    assert (root / "in-progress" / "2.pdf").read_bytes() == b"%PDF-1.7"
    assert sorted(p.read_bytes() for p in archive.iterdir()) == sorted(
        b"%PDF-1.7 " + str(i).encode() for i in range(50))
    clear_retired(root)()  # a run that retired nothing: nothing to do


def _package_bytes(result: PackageResult) -> dict[str, bytes]:
    return {f.path: (result.folder / f.path).read_bytes() for f in result.files}


def test_the_real_build_renumbers_the_precheck_s_report_into_the_bytes_a_whole_check_writes(tmp_path: Path) -> None:
    """The precheck's report (件号 1) stands for the numbered package's when it found nothing: the
    real build checks the 档号 again (GD-1-4 names it) and writes the very bytes a whole check writes."""
    matter, contents = make_matter()
    staged = stage(tmp_path, matter, contents)
    provisional = finalize(staged, 1, write=False).report
    assert renumbered_report(provisional, staged, 1234) is not None  # it stands for the numbered package's
    whole = _package_bytes(finalize(staged, 1234))
    renumbered = finalize(staged, 1234, prechecked=provisional)
    assert _package_bytes(renumbered) == whole
    assert renumbered.report.item("GD-1-4").detail.endswith(f"{archival_code(1234, staged.appraisal)} well-formed")
    assert renumbered.report.archival_code == archival_code(1234, staged.appraisal)


def test_a_precheck_that_found_anything_is_not_reused_and_the_whole_check_runs(tmp_path: Path) -> None:
    """A downgraded finding (GD-4-3 as a warning) may name what the 档号 changes: the real build
    checks the package whole, and a report that failed an item is never carried over either."""
    documents = [*good_documents(), doc("申报材料", "带脚本.pdf", make_javascript_pdf(["js"]))]
    matter, contents = make_matter(documents)
    staged = stage(tmp_path, matter, contents)
    warned = finalize(staged, 1, check_warnings=("GD-4-3",), write=False).report
    assert warned.warning_items
    assert renumbered_report(warned, staged, 7) is None
    whole = _package_bytes(finalize(staged, 7, check_warnings=("GD-4-3",)))
    assert _package_bytes(finalize(staged, 7, check_warnings=("GD-4-3",), prechecked=warned)) == whole
    with pytest.raises(QuarantineError) as err:  # without the downgrade the item fails, prechecked or not
        finalize(staged, 7, prechecked=warned)
    assert "GD-4-3" in err.value.codes


def renumbered_report(report: CheckReport, staged: StagedMatter, item: int) -> CheckReport | None:
    xml = build_metadata(staged.matter, staged.appraisal, [d.entry() for d in staged.documents], fonds=FONDS,
                         archival_code=archival_code(item, staged.appraisal), item_number=item,
                         archived_at=ARCHIVED_AT)
    return renumbered(report, parse_xml(xml), archival_code_template=FONDS.archival_code_template)
