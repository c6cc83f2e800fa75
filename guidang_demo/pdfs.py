"""Deterministic PDFs for the demo world: good ones and the truncated kind the world plants.

fpdf2 is used because it writes small, valid PDFs with no system dependencies; the creation date
is pinned so that two worlds built from the same seed hold byte-identical documents. The makers
of PDFs that only the tests need (encrypted, with JavaScript) live with the tests.
"""

from __future__ import annotations

from datetime import UTC, datetime

FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def make_pdf(lines: list[str], pages: int = 1) -> bytes:
    """A valid PDF with `pages` pages of ASCII text (the core fonts carry no CJK glyphs)."""
    from fpdf import FPDF  # loaded when a PDF is made: nothing outside the demo needs fpdf2

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

