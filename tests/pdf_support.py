"""PDFs that only the tests need: an encrypted one and one that runs JavaScript on open.

The demo world plants none of these (its defects are in `guidang_demo.pdfs`); they feed the
packager's and the checker's fixtures named after the finding they must produce.
"""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter

from guidang_demo.pdfs import make_pdf


def make_encrypted_pdf(lines: list[str], password: str = "secret") -> bytes:
    """A valid PDF locked with AES-128: what the packager must refuse (Q-PDF-ENCRYPTED)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(lines))))
    writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_javascript_pdf(lines: list[str]) -> bytes:
    """A PDF that runs JavaScript on open: active content the security check (GD-4) must flag."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(lines))))
    try:
        from pypdf.actions import JavaScript

        writer.add_open_action(JavaScript("app.alert('guidang test');"))
    except ImportError:  # pypdf < 7
        writer.add_js("app.alert('guidang test');")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
