"""Deterministic PDFs for the demo world and the tests, including the defective kinds.

fpdf2 is used because it writes small, valid PDFs with no system dependencies; the creation date
is pinned so that two worlds built from the same seed hold byte-identical documents.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def make_pdf(lines: list[str], pages: int = 1) -> bytes:
    """A valid PDF with `pages` pages of ASCII text (the core fonts carry no CJK glyphs)."""
    from fpdf import FPDF  # demo/test extra; imported here so that production code never needs it

    pdf = FPDF()
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_font("Helvetica", size=11)
    for page in range(pages):
        pdf.add_page()
        for line in lines:
            pdf.cell(0, 8, text=line.encode("latin-1", "replace").decode("latin-1"), new_x="LMARGIN", new_y="NEXT")
        pdf.cell(0, 8, text=f"page {page + 1} of {pages}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def make_broken_pdf(lines: list[str]) -> bytes:
    """A PDF truncated in the middle: the header is right, the page tree and xref are gone."""
    good = make_pdf(lines)
    return good[: len(good) // 3]


def make_encrypted_pdf(lines: list[str], password: str = "secret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(lines))))
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_javascript_pdf(lines: list[str]) -> bytes:
    """A PDF that runs JavaScript on open: active content the security check (GD-4) must flag."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(lines))))
    try:
        from pypdf.actions import JavaScript

        writer.add_open_action(JavaScript("app.alert('guidang test');"))
    except ImportError:  # pypdf < 7
        writer.add_js("app.alert('guidang test');")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
