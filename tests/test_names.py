"""A document's name in the package must be one any file system the archive is copied to can hold
and shows as it is: Windows device names, trailing dots and spaces, and bidirectional controls are
made safe (the source's own name is kept in 原文件名 by the stage)."""

from __future__ import annotations

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
