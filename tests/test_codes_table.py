"""One table over every quarantine reason (`schemas/codes/quarantine.yaml`) and every 四性检测 check
code (`schemas/codes/dat70.yaml`): each is produced by a named fixture, built with the builders the
subject tests use (tests/test_packager_support.py, tests/content_support.py, tests/pdf_support.py),
through the product code that produces it in a night (the connectors' model, appraisal, staging,
finalize, check_package). A code added to the YAML without a fixture here fails the first test; a
code nothing can produce is listed in EXPECTED_GAPS with the reason, and a test holds that the
product really never names it. For the other code files (audit, repository, retention, EEP, SQL,
configuration) the last test holds that the product names every code somewhere, gaps listed alike.
"""

from __future__ import annotations

import copy
import functools
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from pypdf import PdfWriter

from guidang_demo.ofds import make_ofd, ofd_parts, zip_parts
from guidang_demo.pdfs import make_broken_pdf, make_pdf
from packager.check_report import validate_check_report
from packager.checks import check_package
from packager.content import ContentOptions
from packager.convert import ConverterOptions
from packager.quarantine_error import QuarantineError
from packager.stage import stage_matter
from packager.transfer import write_transfer_batch
from packager.virus import VirusScanner
from retention import AppraisalError, RetentionTable, appraise, load_records
from schemas.config import SignatureConfig, SignatureRule
from schemas.format_policy import FormatsConfig
from schemas.layout import MANIFEST_SHA256, METADATA_FILE
from schemas.model import InvalidMatter, Matter, Problem, ProcessStep
from tests import test_source_values as source_values
from tests.content_support import EICAR, eicar_database, require_clamav
from tests.office_support import docx_bytes, elf_bytes
from tests.pdf_support import make_encrypted_pdf, make_javascript_pdf
from tests.test_packager_support import (
    ARCHIVED_AT,
    FONDS,
    appraisal,
    build,
    default_steps,
    doc,
    edit_metadata,
    finalize,
    good_documents,
    make_matter,
    opener,
    replace_document,
)

ROOT = Path(__file__).resolve().parent.parent
CODES = ROOT / "schemas" / "codes"
PRODUCT = ("schemas", "guidang_io", "retention", "ledger", "connectors", "packager", "night", "custody", "flows")
OFD_TYPE = "application/ofd"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

Producer = Callable[[Path], set[str]]


def _codes_of(*files: str) -> set[str]:
    return {code for name in files for code in yaml.safe_load((CODES / name).read_text(encoding="utf-8"))}


# -- fixtures: a source record the canonical model refuses ---------------------------------------------

def _record_codes(**changes: Any) -> set[str]:
    """The codes a connector gives a record (Problem.from_error over the model's validation errors)."""
    data = make_matter()[0].model_dump()
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    try:
        Matter.model_validate(data)
    except ValidationError as exc:
        return {Problem.from_error(e, "").code for e in exc.errors()}
    return set()


def record_without_a_mandatory_field(_: Path) -> set[str]:
    return _record_codes(service_code=None)


def record_with_matter_type_99(_: Path) -> set[str]:
    return _record_codes(matter_type="99")


def record_completed_before_it_was_received(_: Path) -> set[str]:
    completed = make_matter()[0].completed_at
    return _record_codes(received_at=completed + timedelta(days=1))


# -- fixtures: appraisal against a retention table ----------------------------------------------------

RULE = {"事项编码": "330106-XK-0001", "归档范围": "归档", "保管期限": "30年"}


def _appraisal_codes(table: RetentionTable, service_code: str) -> set[str]:
    matter = make_matter()[0].model_copy(update={"service_code": service_code})
    try:
        appraise(table, matter)
    except AppraisalError as exc:
        return {exc.code}
    return set()


def matter_no_rule_decides(_: Path) -> set[str]:
    result = load_records([RULE], source="test")
    return _appraisal_codes(result.table, "330106-XK-9999")


def matter_two_stored_rules_decide_alike(_: Path) -> set[str]:
    records = load_records([RULE, {**RULE, "保管期限": "10年"}]).table.to_records()
    return _appraisal_codes(RetentionTable.from_records(records), RULE["事项编码"])


# -- fixtures: staging and finalizing one matter ------------------------------------------------------

def _package_codes(tmp_path: Path, documents: list | None = None, options: ContentOptions | None = None,
                   **matter: Any) -> set[str]:
    """Stage and finalize a matter as a night does; the codes of the QuarantineError, if any."""
    made, contents = make_matter(documents, **matter)
    try:
        staged = stage_matter(made, appraisal(), opener(contents), tmp_path / "staging", content=options)
        finalize(staged)
    except QuarantineError as exc:
        return exc.codes
    return set()


def _one(name: str, data: bytes, **kw: Any) -> list:
    return [doc("申报材料", name, data, **kw)]


def document_the_source_cannot_deliver(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, _one("a.pdf", make_pdf(["x"]), locator="loc:gone"))


def document_whose_source_digest_differs(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, _one("a.pdf", make_pdf(["x"]), source_sha256="0" * 64))


def document_whose_source_size_differs(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, _one("a.pdf", make_pdf(["x"]), size=5))


def document_named_with_dot_dot(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, _one("../../etc/evil.pdf", make_pdf(["x"])))


def truncated_pdf(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, _one("a.pdf", make_broken_pdf(["x"])))


def encrypted_pdf(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, _one("a.pdf", make_encrypted_pdf(["x"])))


def pdf_without_pages(tmp_path: Path) -> set[str]:
    out = io.BytesIO()
    PdfWriter().write(out)
    return _package_codes(tmp_path, _one("a.pdf", out.getvalue()))


def matter_without_documents(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, [])


def html_error_page_named_pdf(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, _one("a.pdf", b"<html>502 Bad Gateway</html>"))


def pdf_with_javascript(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, [*good_documents(), doc("申报材料", "带脚本.pdf", make_javascript_pdf(["js"]))])


def region_code_the_metadata_schema_refuses(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, region_code="33-01")


def truncated_ofd(tmp_path: Path) -> set[str]:
    data = make_ofd(["licence"], pages=2)
    return _package_codes(tmp_path, [doc("结果材料", "证照.ofd", data[: len(data) // 2], media_type=OFD_TYPE)])


def ofd_seal_over_a_changed_page(tmp_path: Path) -> set[str]:
    parts = ofd_parts(["准予许可决定书", "许可期限 五年"], pages=2, sealed=True)
    page = "Doc_0/Pages/Page_1/Content.xml"
    parts[page] = parts[page].replace("五年".encode(), "十年".encode())
    return _package_codes(tmp_path, [doc("结果材料", "决定书.ofd", zip_parts(parts), media_type=OFD_TYPE)])


def eicar_scanned_by_clamscan(tmp_path: Path) -> set[str]:
    scanner = VirusScanner(clamscan=require_clamav("clamscan"), database=str(eicar_database(tmp_path / "db")))
    return _package_codes(tmp_path, [doc("结果材料", "附件.txt", EICAR + b"\n", media_type="text/plain")],
                          ContentOptions(virus=scanner))


def required_signature_missing(tmp_path: Path) -> set[str]:
    rule = SignatureRule(service_codes=["*"], matter_types=["01"], groups=["结果"])
    return _package_codes(tmp_path, [*good_documents()[:2], doc("结果材料", "决定书.pdf", make_pdf(["decision"]))],
                          ContentOptions(signature_rules=(rule,)))


def configured_scanner_unavailable(tmp_path: Path) -> set[str]:
    options = ContentOptions(virus=VirusScanner(clamd=str(tmp_path / "no-such.sock")),
                             required_items=ContentOptions().required_items | {"GD-4-1"})
    return _package_codes(tmp_path, None, options)


def matter_without_a_decision_step(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, steps=[s for s in default_steps() if s.name != "决定"])


def matter_with_only_an_application_step(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, steps=[ProcessStep(name="申请")])


def pdf_larger_than_the_parse_limit(tmp_path: Path) -> set[str]:
    """Through the night's own staging, with `pdf_parse_limit_mb: 1` in the configuration."""
    from night.staging import stage_documents
    from packager.content import content_options

    big = make_pdf(["big scan"], pages=1) + b"%" + b"0" * (2 * 2**20) + b"\n"
    matter, contents = make_matter([doc("结果材料", "扫描件.pdf", big)])
    settings = SimpleNamespace(pdf_parse_limit_mb=1, virus_scan=None, signatures=SignatureConfig(),
                               required_checks=None)
    (tmp_path / "staging").mkdir()
    run = SimpleNamespace(settings=settings, staging_root=tmp_path / "staging",
                          content_options=lambda: content_options(settings))  # night.context.RunContext's
    try:
        stage_documents(run, matter, appraisal(), opener(contents))
    except QuarantineError as exc:
        return exc.codes
    return set()


def unplanned_exception_while_staging(tmp_path: Path) -> set[str]:
    from night.quarantine import unexpected_failure

    return unexpected_failure("unified/P1", "staging", OSError(36, "File name too long"), tmp_path).codes


def matter_completed_after_the_run_time(_: Path) -> set[str]:
    from night.staging import completed_in_future

    matter = make_matter()[0]
    return {completed_in_future(matter, matter.completed_at - timedelta(days=1)).code}


# -- fixtures: the format policy and its converter (格式转换) ------------------------------------------

def _policy(tmp_path: Path, **converter: Any) -> ContentOptions:
    return ContentOptions(policy=FormatsConfig(),
                          converter=ConverterOptions(profiles=tmp_path / "converter", **converter))


def _fake_converter(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-soffice"
    script.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "LibreOffice 0.0.0.0 fake"; exit 0; fi\n' + body)
    script.chmod(0o755)
    return str(script)


def executable_refused_by_the_format_policy(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, [*good_documents()[:1], *_one("tool.bin", elf_bytes(),
                                                                  media_type="application/octet-stream")],
                          options=_policy(tmp_path))


def word_file_without_libreoffice(tmp_path: Path) -> set[str]:
    return _package_codes(tmp_path, [*good_documents()[:1], *_one("申请书.docx", docx_bytes(), media_type=DOCX_TYPE)],
                          options=_policy(tmp_path, program="/nonexistent/soffice"))


def word_file_the_converter_fails_on(tmp_path: Path) -> set[str]:
    program = _fake_converter(tmp_path, 'echo "Error: source file could not be loaded" >&2\nexit 1\n')
    return _package_codes(tmp_path, [*good_documents()[:1], *_one("申请书.docx", docx_bytes(), media_type=DOCX_TYPE)],
                          options=_policy(tmp_path, program=program))


# -- fixtures: a self-built system's rows read by the SQL connector ---------------------------------------

def _sql_codes(tmp_path: Path, rows: list[str], docs: list[str], **extra: Any) -> set[str]:
    url = source_values.sqlite_db(tmp_path / "d.sqlite", rows, docs)
    with source_values.connector(source_values.source(url, **extra)) as conn:
        got = source_values.collect(conn)
    return {p.code for m in got.values() if isinstance(m, InvalidMatter) for p in m.findings}


def row_with_gbk_bytes_in_a_text_column(tmp_path: Path) -> set[str]:
    agency = f"CAST(x'{source_values.GBK_HEX}' AS TEXT)"
    bad = f"'P3', {agency}, '某公司', '2025-03-03 10:00:00', '2025-03-03 10:00:00', 'BJ'"
    return _sql_codes(tmp_path, [*source_values.GOOD, bad], source_values.GOOD_DOCS)


def documents_query_returning_another_matters_rows(tmp_path: Path) -> set[str]:
    leaky = "SELECT fid, pid, grp, fname, title, body FROM d WHERE pid = :project_id OR fid = 2"
    return _sql_codes(tmp_path, source_values.GOOD, source_values.GOOD_DOCS, documents_query=leaky)


# -- fixtures: a stored package tampered with, checked again (接收检测) ----------------------------------

def _checked(tmp_path: Path, tamper: Callable[[Path], None]) -> set[str]:
    folder = build(tmp_path).folder
    tamper(folder)
    return {item.code for item in check_package(folder).failed_items}


def _tamper_bytes(folder: Path) -> None:
    path = folder / "过程材料/现场核查记录.pdf"
    data = bytearray(path.read_bytes())
    data[7] = ord("4")  # same size, still opens: only the digests tell
    path.write_bytes(bytes(data))


def document_changed_after_packaging(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, _tamper_bytes)


def archival_code_malformed(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, lambda f: edit_metadata(
        f, lambda root: setattr(root.find("档号/完整档号"), "text", "Z109/WS/2026/D30/SJ/0001")))


def metadata_lists_a_document_twice(tmp_path: Path) -> set[str]:
    def dup(root: Any) -> None:
        files = root.find("文件信息")
        files.append(copy.deepcopy(files[0]))
        root.find("形式特征/件数").text = "5"
    return _checked(tmp_path, lambda f: edit_metadata(f, dup))


def document_smuggled_into_a_group_folder(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, lambda f: (f / "申报材料" / "extra.pdf").write_bytes(make_pdf(["smuggled"])))


def metadata_without_its_responsible_party(tmp_path: Path) -> set[str]:
    def drop(root: Any) -> None:
        desc = root.find("内容描述")
        desc.remove(desc.find("责任者"))
    return _checked(tmp_path, lambda f: edit_metadata(f, drop))


def document_deleted_from_the_package(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, lambda f: (f / "申报材料" / "申请书.pdf").unlink())


def metadata_saying_not_in_scope(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, lambda f: edit_metadata(
        f, lambda root: setattr(root.find("保管信息/归档范围"), "text", "不归档")))


def metadata_not_xml(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, lambda f: (f / METADATA_FILE).write_bytes(b"<not xml"))


def executable_among_the_documents(tmp_path: Path) -> set[str]:
    exe = b"MZ\x90\x00\x03" + bytes(300)
    documents = [*good_documents(), doc("申报材料", "setup.exe", exe, media_type="application/x-msdownload")]
    matter, contents = make_matter(documents)
    staged = stage_matter(matter, appraisal(), opener(contents), tmp_path / "staging")
    folder = finalize(staged, check_warnings={"GD-3-2"}).folder
    return {item.code for item in check_package(folder).failed_items}


def stored_pdf_replaced_by_an_encrypted_one(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, lambda f: replace_document(f, "结果材料/准予许可决定书.pdf",
                                                         make_encrypted_pdf(["decision"])))


def stray_file_beside_the_package(tmp_path: Path) -> set[str]:
    return _checked(tmp_path, lambda f: (f / "notes.txt").write_text("left behind\n"))


def manifest_line_removed(tmp_path: Path) -> set[str]:
    def remove(folder: Path) -> None:
        path = folder / MANIFEST_SHA256
        path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[1:]), encoding="utf-8")
    return _checked(tmp_path, remove)


# -- fixtures: the XML guidang writes, validated against its XSD -----------------------------------------

def check_report_without_its_items(_: Path) -> set[str]:
    return {f.code for f in validate_check_report("<检测报告/>".encode())}


def transfer_row_with_a_dashed_date(tmp_path: Path) -> set[str]:
    row = {"archival_code": "Z109-WS·2026·D10·SJ-0001", "responsible": "机构", "title": "t",
           "date": "2026-01-01", "period": "D10"}
    try:
        write_transfer_batch(tmp_path / "batch", batch_id="B1", fonds=FONDS, packages=[row], created_at=ARCHIVED_AT)
    except Exception as exc:  # GuidangError carrying the XSD's findings
        return {f.code for f in getattr(exc, "findings", [])}
    return set()


# -- the table -------------------------------------------------------------------------------------------

PRODUCERS: dict[str, Producer] = {
    # quarantine reasons
    "Q-SOURCE-INVALID": record_without_a_mandatory_field,
    "Q-UNKNOWN-MATTER-TYPE": record_with_matter_type_99,
    "Q-DATES-OUT-OF-ORDER": record_completed_before_it_was_received,
    "Q-RETENTION-NO-RULE": matter_no_rule_decides,
    "Q-RETENTION-AMBIGUOUS": matter_two_stored_rules_decide_alike,
    "Q-DOC-FETCH-FAILED": document_the_source_cannot_deliver,
    "Q-DOC-DIGEST-MISMATCH": document_whose_source_digest_differs,
    "Q-DOC-SIZE-MISMATCH": document_whose_source_size_differs,
    "Q-DOC-UNSAFE-NAME": document_named_with_dot_dot,
    "Q-PDF-BROKEN": truncated_pdf,
    "Q-PDF-ENCRYPTED": encrypted_pdf,
    "Q-PDF-NO-PAGES": pdf_without_pages,
    "Q-NO-DOCUMENTS": matter_without_documents,
    "Q-CHECK-FAILED": pdf_with_javascript,
    "Q-METADATA-INVALID": region_code_the_metadata_schema_refuses,
    "Q-FORMAT-MISMATCH": html_error_page_named_pdf,
    "Q-PDF-TOO-LARGE": pdf_larger_than_the_parse_limit,
    "Q-STAGE-FAILED": unplanned_exception_while_staging,
    "Q-COMPLETED-IN-FUTURE": matter_completed_after_the_run_time,
    "Q-VIRUS": eicar_scanned_by_clamscan,
    "Q-OFD-INVALID": truncated_ofd,
    "Q-SIGNATURE-INVALID": ofd_seal_over_a_changed_page,
    "Q-FORMAT-REFUSED": executable_refused_by_the_format_policy,
    "Q-CONVERTER-MISSING": word_file_without_libreoffice,
    "Q-CONVERSION-FAILED": word_file_the_converter_fails_on,
    "Q-SOURCE-VALUE": row_with_gbk_bytes_in_a_text_column,
    "Q-DOC-FOREIGN": documents_query_returning_another_matters_rows,
    # 四性检测 items (DA/T 70)
    "GD-1-1": document_changed_after_packaging,
    "GD-1-2": manifest_line_removed,
    "GD-1-3": document_changed_after_packaging,
    "GD-1-4": archival_code_malformed,
    "GD-1-5": metadata_lists_a_document_twice,
    "GD-1-6": required_signature_missing,
    "GD-2-1": document_smuggled_into_a_group_folder,
    "GD-2-2": document_smuggled_into_a_group_folder,
    "GD-2-3": metadata_without_its_responsible_party,
    "GD-2-4": matter_without_a_decision_step,
    "GD-2-5": document_deleted_from_the_package,
    "GD-2-6": metadata_saying_not_in_scope,
    "GD-3-1": metadata_not_xml,
    "GD-3-2": executable_among_the_documents,
    "GD-3-3": stored_pdf_replaced_by_an_encrypted_one,
    "GD-4-1": configured_scanner_unavailable,
    "GD-4-2": stray_file_beside_the_package,
    "GD-4-3": pdf_with_javascript,
    "CHECK-REPORT-INVALID": check_report_without_its_items,
    "TRANSFER-INVALID": transfer_row_with_a_dashed_date,
}

# Codes defined in the YAML that nothing in the product can produce yet, each with why.
EXPECTED_GAPS: dict[str, str] = {
    "Q-DOC-DUPLICATE-NAME": "two documents of one name in a group are both archived, the second under a "
                            "distinct name recording the original (tests/test_staging_documents.py); "
                            "no matter is quarantined for it",
}
OTHER_GAPS: dict[str, str] = {
    "A-FIXITY-MISMATCH": "audit fixity reports a changed object as A-OBJECT-CHANGED",
    "A-REGISTER-MISMATCH": "audit register reports its differences under the A-BATCH-* and A-OBJECT-* codes",
}


@functools.cache
def _product_text() -> str:
    files = (p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py")))
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def test_the_table_names_every_quarantine_reason_and_check_code() -> None:
    defined = _codes_of("quarantine.yaml", "dat70.yaml")
    assert not set(PRODUCERS) & set(EXPECTED_GAPS)
    assert defined - set(PRODUCERS) - set(EXPECTED_GAPS) == set(), "codes without a producing fixture"
    assert set(PRODUCERS) | set(EXPECTED_GAPS) <= defined, "the table names codes the YAML does not define"


@pytest.mark.parametrize("code", sorted(PRODUCERS))
def test_each_code_is_produced_by_its_fixture(code: str, tmp_path: Path) -> None:
    produced = PRODUCERS[code](tmp_path)
    assert code in produced, f"{PRODUCERS[code].__name__} produced {sorted(produced)}, not {code}"


@pytest.mark.parametrize("code", sorted(EXPECTED_GAPS | OTHER_GAPS))
def test_an_expected_gap_is_named_nowhere_in_the_product(code: str) -> None:
    """Once the product produces it, it needs a fixture above instead of a place in the gap list."""
    assert code not in _product_text(), f"{code} is produced now: give it a fixture ({EXPECTED_GAPS | OTHER_GAPS})"


def test_every_other_code_is_named_by_the_product() -> None:
    others = _codes_of(*(p.name for p in CODES.glob("*.yaml") if p.name not in {"quarantine.yaml", "dat70.yaml"}))
    text = _product_text()
    unnamed = {code for code in others - set(OTHER_GAPS) if code not in text}
    assert not unnamed, f"codes no product module names (a fixture or a gap entry each): {sorted(unnamed)}"
    assert set(OTHER_GAPS) <= others


def test_a_clean_matter_produces_no_code(tmp_path: Path) -> None:
    """The fixtures' baseline: what they change is what the code is for, not the builders."""
    assert _package_codes(tmp_path) == set()
    assert _record_codes() == set()
    assert {item.code for item in check_package(build(tmp_path / "built").folder).failed_items} == set()
