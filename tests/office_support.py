"""Office files for the format tests, made here: a DOCX by hand and an XLSX with openpyxl
(guidang_demo/office.py), and from them with the real LibreOffice (Debian's, which .ci/run installs)
an ODT, a legacy DOC, an RTF, an ODS, an XLS and a PPTX. Without LibreOffice a test that needs it
skips, unless GUIDANG_REQUIRE_SERVICES is set: then it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from guidang_demo.office import make_docx, make_xlsx

PARAGRAPHS = ["Application for a food business licence", "申请人：某某餐饮有限公司"]


def require_soffice() -> str:
    found = shutil.which("soffice")
    if found is None:
        if os.environ.get("GUIDANG_REQUIRE_SERVICES"):
            pytest.fail("LibreOffice (soffice) is required (GUIDANG_REQUIRE_SERVICES is set): "
                        "apt-get install libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui")
        pytest.skip("LibreOffice (soffice) is not installed")
    return found


def docx_bytes(pages: int = 2) -> bytes:
    return make_docx(PARAGRAPHS, pages=pages)


def xlsx_bytes() -> bytes:
    return make_xlsx([["事项", "件数"], ["食品经营许可", 12], ["卫生许可", 7]])


@cache
def converted(target: str, source: str = "docx") -> bytes:
    """The DOCX (or XLSX) converted by LibreOffice to `target` (odt, doc, rtf, ods, xls, pptx, …),
    made once per test process in a folder of its own."""
    program = require_soffice()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"guidang-office-{os.getpid()}"
    work.mkdir(exist_ok=True)
    src = work / f"source.{source}"
    src.write_bytes(docx_bytes() if source == "docx" else xlsx_bytes())
    if target == "pptx":  # Impress opens a text document only through its outline: use a one-slide ODP
        src = work / "source.odp"
        src.write_bytes(_odp())
    subprocess.run([program, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless",
                    "--convert-to", target, "--outdir", str(work / "out"), str(src)],
                   check=True, capture_output=True, timeout=180)
    return (work / "out" / f"{src.stem}.{target}").read_bytes()


def _odp() -> bytes:
    import io
    import zipfile

    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
               'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2">'
               '<office:body><office:presentation><draw:page draw:name="p1"><draw:frame svg:x="2cm" '
               'svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box><text:p>Slide one</text:p>'
               '</draw:text-box></draw:frame></draw:page></office:presentation></office:body>'
               '</office:document-content>')
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.presentation"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                '</manifest:manifest>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.presentation", compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def elf_bytes() -> bytes:
    """The first bytes of a real executable of this machine (an ELF file), a refused format."""
    with open(shutil.which("true") or "/bin/true", "rb") as fh:
        return fh.read(4096)
