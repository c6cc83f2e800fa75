"""Deterministic OFD documents (GB/T 33190-2016) for the demo world and the tests: the form that
electronic licences (电子证照) and decisions with an 电子印章 take in Chinese government systems.

A document is a ZIP container: OFD.xml -> DocBody -> Doc_0/Document.xml -> one Content.xml per page,
the fonts in Doc_0/PublicRes.xml, and, when `sealed`, an electronic seal: Doc_0/Signs/Signatures.xml
naming Sign_0/Signature.xml, whose SignedInfo/References carry the SM3 digest (base64) of every
other part, as ofdrw and the commercial seal systems write them. The signed value (SignedValue.dat)
would be a GB/T 38540 SM2 seal made with the issuing office's seal certificate; the demo has no such
certificate, so it holds a fixed stand-in: guidang records every OFD seal's value as "present, not
verified" whatever it holds, and checks what it can check, the references.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from xml.sax.saxutils import escape

NS = "http://www.ofdspec.org/2016"
_FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # ZIP member times: the same bytes from every build
_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
SM3_OID = "1.2.156.10197.1.401"
SM2_OID = "1.2.156.10197.1.501"


def _ofd_xml(title: str, sealed: bool) -> str:
    signatures = "<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>" if sealed else ""
    return (f'{_HEADER}<ofd:OFD xmlns:ofd="{NS}" Version="1.1" DocType="OFD"><ofd:DocBody><ofd:DocInfo>'
            f"<ofd:DocID>{hashlib.md5(title.encode()).hexdigest()}</ofd:DocID><ofd:Title>{escape(title)}</ofd:Title>"
            "<ofd:CreationDate>2026-01-01</ofd:CreationDate></ofd:DocInfo>"
            f"<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>{signatures}</ofd:DocBody></ofd:OFD>")


def _document_xml(pages: int) -> str:
    listed = "".join(f'<ofd:Page ID="{10 + i}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(pages))
    return (f'{_HEADER}<ofd:Document xmlns:ofd="{NS}"><ofd:CommonData><ofd:MaxUnitID>{100 + pages}</ofd:MaxUnitID>'
            "<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea>"
            f"<ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData><ofd:Pages>{listed}</ofd:Pages>"
            "</ofd:Document>")


def _public_res(font: str, embedded: bool) -> str:
    font_file = "<ofd:FontFile>font_1.ttf</ofd:FontFile>" if embedded else ""
    return (f'{_HEADER}<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res"><ofd:Fonts>'
            f'<ofd:Font ID="1" FontName="{escape(font)}" FamilyName="{escape(font)}">{font_file}</ofd:Font>'
            "</ofd:Fonts></ofd:Res>")


def _page_xml(lines: list[str], page: int, pages: int) -> str:
    rows = [*lines, f"第 {page + 1} 页 共 {pages} 页"]
    texts = "".join(
        f'<ofd:TextObject ID="{1000 + page * 100 + n}" Boundary="20 {20 + 8 * n} 170 8" Font="1" Size="4.2">'
        f'<ofd:TextCode X="0" Y="4">{escape(text)}</ofd:TextCode></ofd:TextObject>'
        for n, text in enumerate(rows)
    )
    return (f'{_HEADER}<ofd:Page xmlns:ofd="{NS}"><ofd:Content><ofd:Layer ID="{900 + page}">{texts}</ofd:Layer>'
            "</ofd:Content></ofd:Page>")


def ofd_parts(lines: list[str], *, pages: int = 1, sealed: bool = False, font: str = "宋体",
              embed_font: bool = False, seal_provider: str = "guidang demo seal service") -> dict[str, bytes]:
    """The container's parts by name, before zipping (tests change a part and zip them again)."""
    parts: dict[str, bytes] = {
        "OFD.xml": _ofd_xml(lines[0] if lines else "document", sealed).encode(),
        "Doc_0/Document.xml": _document_xml(pages).encode(),
        "Doc_0/PublicRes.xml": _public_res(font, embed_font).encode(),
    }
    if embed_font:
        parts["Doc_0/Res/font_1.ttf"] = b"\x00\x01\x00\x00" + hashlib.sha256(font.encode()).digest() * 8
    for i in range(pages):
        parts[f"Doc_0/Pages/Page_{i}/Content.xml"] = _page_xml(lines, i, pages).encode()
    if sealed:
        parts.update(seal_parts(parts, provider=seal_provider))
    return parts


def seal_parts(parts: dict[str, bytes], *, provider: str = "guidang demo seal service") -> dict[str, bytes]:
    """Signatures.xml, Signature.xml and SignedValue.dat over `parts` (SM3 reference per part)."""
    refs = "".join(
        f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>'
        f'{base64.b64encode(hashlib.new("sm3", data).digest()).decode()}</ofd:CheckValue></ofd:Reference>'
        for name, data in sorted(parts.items())
    )
    signature = (
        f'{_HEADER}<ofd:Signature xmlns:ofd="{NS}"><ofd:SignedInfo>'
        f'<ofd:Provider ProviderName="{escape(provider)}" Version="1.0" Company="guidang"/>'
        f"<ofd:SignatureMethod>{SM2_OID}</ofd:SignatureMethod>"
        "<ofd:SignatureDateTime>20260101080000Z</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="{SM3_OID}">{refs}</ofd:References>'
        '<ofd:StampAnnot ID="1" PageRef="10" Boundary="120 200 40 40"/></ofd:SignedInfo>'
        "<ofd:SignedValue>/Doc_0/Signs/Sign_0/SignedValue.dat</ofd:SignedValue></ofd:Signature>"
    ).encode()
    listing = (f'{_HEADER}<ofd:Signatures xmlns:ofd="{NS}"><ofd:MaxSignId>1</ofd:MaxSignId>'
               '<ofd:Signature ID="1" Type="Seal" BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>').encode()
    stand_in = b"0\x82" + hashlib.sha256(signature).digest()  # no SM2 seal certificate in the demo
    return {
        "Doc_0/Signs/Signatures.xml": listing,
        "Doc_0/Signs/Sign_0/Signature.xml": signature,
        "Doc_0/Signs/Sign_0/SignedValue.dat": stand_in,
    }


def zip_parts(parts: dict[str, bytes]) -> bytes:
    """The OFD container of `parts`, deflated, member order and times fixed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(parts, key=lambda n: (n != "OFD.xml", n)):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, parts[name])
    return buf.getvalue()


def make_ofd(lines: list[str], *, pages: int = 1, sealed: bool = False, **kwargs: object) -> bytes:
    """An OFD document showing `lines` on each of `pages` pages, sealed when asked."""
    return zip_parts(ofd_parts(lines, pages=pages, sealed=sealed, **kwargs))  # type: ignore[arg-type]
