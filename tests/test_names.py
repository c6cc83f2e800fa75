"""A document's name in the package must be one any file system the archive is copied to can hold
and shows as it is: Windows device names, trailing dots and spaces, and bidirectional controls are
made safe (the source's own name is kept in 原文件名 by the stage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.layout import portable_name, stored_names


@pytest.mark.parametrize(("name", "stored"), [
    ("CON.pdf", "_CON.pdf"), ("aux.pdf", "_aux.pdf"), ("NUL", "_NUL"), ("com7.tar.gz", "_com7.tar.gz"),
    ("Lpt1 .txt", "_Lpt1 .txt"), ("报告.pdf.", "报告.pdf"), ("报告.pdf . ", "报告.pdf"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"), ("a\u2066b\u2069\u200e.pdf", "ab.pdf"),
    ("CONSOLE.pdf", "CONSOLE.pdf"), ("COM10.pdf", "COM10.pdf"), ("普通.pdf", "普通.pdf"), ("...", "_"),
])
def test_portable_names(name: str, stored: str) -> None:
    assert portable_name(name) == stored


def test_a_made_safe_name_never_takes_another_documents_name() -> None:
    assert stored_names(["CON.pdf", "_CON.pdf", "con.pdf", "a.pdf.", "a.pdf"]) == [
        "_CON(2).pdf", "_CON.pdf", "_con(3).pdf", "a(2).pdf", "a.pdf"]


def test_a_package_stores_reserved_and_reordering_names_safely_and_keeps_the_sources(tmp_path: Path) -> None:
    from lxml import etree

    from guidang_demo.pdfs import make_pdf
    from packager.checks import check_package
    from schemas.layout import METADATA_FILE
    from tests.test_packager_support import doc, finalize, good_documents, make_matter, stage

    hostile = ["CON.pdf", "报告.pdf.", "invoice\u202efdp.pdf"]
    documents = [doc("申报材料", name, make_pdf([str(i)]), title=f"材料{i}", locator=f"loc:{i}")
                 for i, name in enumerate(hostile)]
    matter, contents = make_matter([*good_documents(), *documents])
    result = finalize(stage(tmp_path, matter, contents))
    assert result.passed
    root = etree.parse(str(result.folder / METADATA_FILE)).getroot()
    entries = {f.findtext("原文件名"): f.findtext("文件名") for f in root.findall("文件信息/文件")}
    assert {name: entries[name] for name in hostile} == {
        "CON.pdf": "_CON.pdf", "报告.pdf.": "报告.pdf", "invoice\u202efdp.pdf": "invoicefdp.pdf"}
    on_disk = {p.name for p in (result.folder / "申报材料").iterdir()}
    assert {"_CON.pdf", "报告.pdf", "invoicefdp.pdf"} <= on_disk
    assert check_package(result.folder).passed
