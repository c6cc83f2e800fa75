"""Word and Excel files as applicants upload them (申报材料), made without any office suite.

The DOCX is written by hand (the four parts a word processor needs: content types, the package
relationship, the document and its styles) so the demo needs no extra dependency; the XLSX with
openpyxl, which guidang already uses to read retention tables. Both are deterministic: the ZIP
entries carry a fixed time, so two worlds built from one seed hold byte-identical files.
"""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

_FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '</Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>'
)


def _paragraph(text: str, page_break: bool = False) -> str:
    brk = '<w:r><w:br w:type="page"/></w:r>' if page_break else ""
    return f'<w:p>{brk}<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def make_docx(paragraphs: list[str], pages: int = 1, padding: int = 0) -> bytes:
    """A DOCX of `pages` pages (a page break before each further page), each with `paragraphs`;
    `padding` bytes of random data in a stored media part (as an embedded scan or logo would be)
    make a file of a given size for the bench without making it longer to lay out."""
    body = []
    for page in range(pages):
        for i, text in enumerate(paragraphs):
            body.append(_paragraph(text, page_break=page > 0 and i == 0))
        body.append(_paragraph(f"第 {page + 1} 页，共 {pages} 页"))
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        + "".join(body) + '</w:body></w:document>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, text in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _RELS),
                           ("word/document.xml", document)):
            info = zipfile.ZipInfo(name, _FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
        if padding:
            import random

            info = zipfile.ZipInfo("word/media/scan.bin", _FIXED_ZIP_TIME)
            zf.writestr(info, random.Random(padding).randbytes(padding))
    return out.getvalue()


def make_xlsx(rows: list[list[object]], title: str = "Sheet1") -> bytes:
    """An XLSX with one sheet of `rows`, its ZIP entries dated like the DOCX's."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    raw = io.BytesIO()
    wb.save(raw)
    # openpyxl stamps the entries with the current time: rewrite them with a fixed one
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = _pin_core_dates(data)
            info = zipfile.ZipInfo(item.filename, _FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    return out.getvalue()


def _pin_core_dates(core: bytes) -> bytes:
    import re

    return re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2026-01-01T00:00:00Z", core)


DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def office_attachment(title: str, lines: list[str], pages: int) -> tuple[bytes, str, str] | None:
    """The 申报材料 the demo's applicants hand in as office files, chosen by title so that the
    world's random draws stay what they were: a 申请书 as a Word file, a statement or list as an
    Excel workbook. (bytes, extension, media type), or None for a PDF."""
    if title.endswith("申请书"):
        return make_docx([title, *lines], pages=pages), "docx", DOCX_TYPE
    if title in ("家庭收入财产声明", "质量管理文件目录"):
        return make_xlsx([[title], *[[line] for line in lines]]), "xlsx", XLSX_TYPE
    return None
