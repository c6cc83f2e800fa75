"""Deterministic OFD documents (GB/T 33190-2016) for the demo world and the tests: the form that
electronic licences (电子证照) and decisions with an 电子印章 take in Chinese government systems.

A document is a ZIP container: OFD.xml -> DocBody -> Doc_0/Document.xml -> one Content.xml per page,
the fonts in Doc_0/PublicRes.xml, and, when `sealed`, electronic seals: Doc_0/Signs/Signatures.xml
naming Sign_N/Signature.xml, whose SignedInfo/References carry the SM3 digest (base64) of every
other part, as ofdrw and the commercial seal systems write them, and SignedValue.dat, a real
GB/T 38540 seal (guidang_demo/seals.py) made with keys and certificates generated from a seed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from datetime import UTC, datetime
from functools import cache
from xml.sax.saxutils import escape

from guidang_demo.seals import (
    SealIdentity,
    cms_sign,
    eseal_v4,
    make_identity,
    ses_v1,
    ses_v4,
    sm2_sign,
    z_prefix,
)

NS = "http://www.ofdspec.org/2016"
_FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # ZIP member times: the same bytes from every build
_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
SM3_OID = "1.2.156.10197.1.401"
SM3_WITH_Z_OID = "1.2.156.10197.1.401.2"
SM2_OID = "1.2.156.10197.1.501"
_SEAL_TIME = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)


def _ofd_xml(title: str, sealed: bool, doc_type: str = "OFD") -> str:
    signatures = "<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>" if sealed else ""
    return (f'{_HEADER}<ofd:OFD xmlns:ofd="{NS}" Version="1.1" DocType="{doc_type}"><ofd:DocBody><ofd:DocInfo>'
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
              embed_font: bool = False, seal_provider: str = "guidang demo seal service",
              doc_type: str = "OFD", seals: int = 1, identity: SealIdentity | None = None) -> dict[str, bytes]:
    """The container's parts by name, before zipping (tests change a part and zip them again).
    `sealed`: `seals` GB/T 38540 seals one after the other, each appending its entry to
    Signatures.xml as sealing systems do."""
    parts: dict[str, bytes] = {
        "OFD.xml": _ofd_xml(lines[0] if lines else "document", sealed, doc_type).encode(),
        "Doc_0/Document.xml": _document_xml(pages).encode(),
        "Doc_0/PublicRes.xml": _public_res(font, embed_font).encode(),
    }
    if embed_font:
        parts["Doc_0/Res/font_1.ttf"] = b"\x00\x01\x00\x00" + hashlib.sha256(font.encode()).digest() * 8
    for i in range(pages):
        parts[f"Doc_0/Pages/Page_{i}/Content.xml"] = _page_xml(lines, i, pages).encode()
    for _ in range(seals if sealed else 0):
        parts.update(seal_parts(parts, identity or demo_identity(), provider=seal_provider))
    return parts


@cache
def demo_identity() -> SealIdentity:
    """The demo world's seal authority, maker and issuing office (the same keys every build)."""
    return make_identity("guidang demo world")


def seal_parts(parts: dict[str, bytes], identity: SealIdentity, *, provider: str = "guidang demo seal service",
               kind: str = "Seal", version: int = 4, check_method: str = SM3_OID,
               when: datetime = _SEAL_TIME, raw_signature: bool = False,
               signed_attributes: bool = True, bare: bool = False, seal_file: bool = False,
               append_max_id: bool = False, timestamp: bytes | None = None) -> dict[str, bytes]:
    """A further signature over `parts`: its Signatures.xml entry (appended to the list when there is
    one), Signature.xml with a reference per part (the list included), and SignedValue.dat."""
    listing_name = "Doc_0/Signs/Signatures.xml"
    n = sum(1 for name in parts if name.endswith("/Signature.xml"))
    entry = f'<ofd:Signature ID="{n + 1}" Type="{kind}" BaseLoc="Sign_{n}/Signature.xml"/>'
    if listing_name in parts and append_max_id:  # as some producers add a seal: entry and MaxSignId appended
        listing = parts[listing_name].replace(
            b"</ofd:Signatures>", f"{entry}<ofd:MaxSignId>{n + 1}</ofd:MaxSignId></ofd:Signatures>".encode())
    elif listing_name in parts:
        old = parts[listing_name].decode()
        old = old.replace(f"<ofd:MaxSignId>{n}</ofd:MaxSignId>", f"<ofd:MaxSignId>{n + 1}</ofd:MaxSignId>")
        listing = old.replace("</ofd:Signatures>", f"{entry}</ofd:Signatures>").encode()
    else:
        listing = (f'{_HEADER}<ofd:Signatures xmlns:ofd="{NS}"><ofd:MaxSignId>1</ofd:MaxSignId>{entry}'
                   "</ofd:Signatures>").encode()
    protected = {**parts, listing_name: listing}
    prefix = z_prefix(identity.signer_public) if check_method == SM3_WITH_Z_OID else b""
    refs = "".join(
        f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>'
        f'{base64.b64encode(hashlib.new("sm3", prefix + data).digest()).decode()}</ofd:CheckValue></ofd:Reference>'
        for name, data in sorted(protected.items())
    )
    sign_path = f"Doc_0/Signs/Sign_{n}"
    seal_ref = f"<ofd:Seal><ofd:BaseLoc>/{sign_path}/Seal.esl</ofd:BaseLoc></ofd:Seal>" if seal_file else ""
    signature = (
        f'{_HEADER}<ofd:Signature xmlns:ofd="{NS}"><ofd:SignedInfo>'
        f'<ofd:Provider ProviderName="{escape(provider)}" Version="1.0" Company="guidang"/>'
        f"<ofd:SignatureMethod>{SM2_OID}</ofd:SignatureMethod>"
        f"<ofd:SignatureDateTime>{when:%Y%m%d%H%M%S}Z</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="{check_method}">{refs}</ofd:References>'
        f'<ofd:StampAnnot ID="{n + 1}" PageRef="10" Boundary="120 200 40 40"/>{seal_ref}</ofd:SignedInfo>'
        f"<ofd:SignedValue>/{sign_path}/SignedValue.dat</ofd:SignedValue></ofd:Signature>"
    ).encode()
    if kind == "Seal":
        make = ses_v4 if version == 4 else ses_v1
        extra = {"raw_signature": raw_signature, "timestamp": timestamp} if version == 4 else {}
        value = make(identity, signature, f"/{sign_path}/Signature.xml", when, **extra)
    elif bare:
        value = sm2_sign(identity.signer_private, identity.signer_public, signature)
    else:
        value = cms_sign(identity, signature, when, signed_attributes=signed_attributes)
    out = {listing_name: listing, f"{sign_path}/Signature.xml": signature, f"{sign_path}/SignedValue.dat": value}
    if seal_file:
        out[f"{sign_path}/Seal.esl"] = eseal_v4(identity)
    return out


def licence_variant(file_id: str) -> dict[str, object]:
    """How the demo world varies its licences, from the file's ID (not the world's random stream,
    so adding it changes nothing else): every third is OFD-A, every fourth is sealed twice."""
    n = int(hashlib.sha256(file_id.encode()).hexdigest()[:8], 16)
    return {"doc_type": "OFD-A" if n % 3 == 0 else "OFD", "seals": 2 if n % 4 == 1 else 1}


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
