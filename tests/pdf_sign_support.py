"""PDFs signed with pyHanko and then changed the ways real files are: a byte range leaving a gap,
an uncovered tail, an appearance stream overridden after signing (a "shadow" change to what the
reader sees), and a form field filled after signing, as a signature permits (issue 31, item 3).
"""

from __future__ import annotations

import asyncio
import io
import re

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from guidang_demo.pdfs import make_pdf


def _stream(text: str) -> generic.StreamObject:
    content = f"/Tx BMC BT /Helv 10 Tf 2 4 Td ({text}) Tj ET EMC".encode()
    return generic.StreamObject({
        generic.NameObject("/Type"): generic.NameObject("/XObject"),
        generic.NameObject("/Subtype"): generic.NameObject("/Form"),
        generic.NameObject("/BBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 200, 20)]),
    }, stream_data=content)


def form_pdf(value: str = "five years") -> bytes:
    """A one-page PDF with a text field 许可期限 (its value and appearance stream), ready to sign."""
    w = IncrementalPdfFileWriter(io.BytesIO(make_pdf(["decision with a form field"])))
    page = w.root["/Pages"]["/Kids"].raw_get(0)
    ap = w.add_object(_stream(value))
    field = w.add_object(generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Annot"),
        generic.NameObject("/Subtype"): generic.NameObject("/Widget"),
        generic.NameObject("/FT"): generic.NameObject("/Tx"),
        generic.NameObject("/T"): generic.TextStringObject("term"),
        generic.NameObject("/V"): generic.TextStringObject(value),
        generic.NameObject("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (50, 700, 250, 720)]),
        generic.NameObject("/F"): generic.NumberObject(4),
        generic.NameObject("/P"): page,
        generic.NameObject("/AP"): generic.DictionaryObject({generic.NameObject("/N"): ap}),
    }))
    page_obj = page.get_object()
    page_obj[generic.NameObject("/Annots")] = generic.ArrayObject([field])
    w.mark_update(page)
    w.root[generic.NameObject("/AcroForm")] = generic.DictionaryObject({
        generic.NameObject("/Fields"): generic.ArrayObject([field]),
    })
    w.update_root()
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def fill_field(data: bytes, value: str) -> bytes:
    """After signing, the field filled with a new value and a new appearance (what a signature permits)."""
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    field_ref = w.root["/AcroForm"]["/Fields"].raw_get(0)
    field = field_ref.get_object()
    field[generic.NameObject("/V")] = generic.TextStringObject(value)
    appearance = w.add_object(_stream(value))
    field[generic.NameObject("/AP")] = generic.DictionaryObject({generic.NameObject("/N"): appearance})
    w.mark_update(field_ref)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def shadow_appearance(data: bytes, shown: str, field: int = 0) -> bytes:
    """After signing, the appearance stream the signed revision uses overwritten in place: the value
    stays, what the reader shows changes."""
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    ap_ref = w.root["/AcroForm"]["/Fields"][field].get_object()["/AP"].raw_get("/N")
    w.objects[(ap_ref.generation, ap_ref.idnum)] = _stream(shown)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def resign(data: bytes, signer, *, gap: int = 0, tail: int = 0) -> bytes:
    """The signature re-made over byte ranges that leave `gap` bytes before /Contents, or the last
    `tail` bytes of its revision, unsigned (a valid signature over a nonstandard coverage)."""
    from cryptography.hazmat.primitives import hashes

    sig = PdfFileReader(io.BytesIO(data)).embedded_signatures[0]
    a, b, c, d = sig.byte_range
    match = re.search(rb"/ByteRange\s*\[[^\]]*\]", data)
    old = match.group(0)
    new = f"/ByteRange [{a} {b - gap} {c} {d - tail}]".encode()
    data = data[:match.start()] + new + b" " * (len(old) - len(new)) + data[match.end():]
    h = hashes.Hash(hashes.SHA256())
    h.update(data[a:a + b - gap])
    h.update(data[c:c + d - tail])
    hexed = asyncio.run(signer.async_sign(h.finalize(), "sha256")).dump().hex().encode()
    slot = (c - 1) - (b + 1)  # the hex digits between < and >
    return data[:b + 1] + hexed + b"0" * (slot - len(hexed)) + data[c - 1:]


def sm2_signer(identity):
    """A pyHanko signer that signs SM2-with-SM3 over SM3 digests with a guidang_demo seal identity's
    signer key, as Chinese PDF signing tools do (asn1crypto is taught the SM3 OID's name, which
    pyHanko needs to pick cryptography's SM3)."""
    from asn1crypto import algos, x509
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    from guidang_demo import sm2_math

    algos.DigestAlgorithmId._map["1.2.156.10197.1.401"] = "sm3"
    if algos.DigestAlgorithmId._reverse_map is not None:
        algos.DigestAlgorithmId._reverse_map["sm3"] = "1.2.156.10197.1.401"
    cert = x509.Certificate.load(identity.signer_cert)

    class Sm2Signer(signers.Signer):
        def __init__(self) -> None:
            super().__init__(signing_cert=cert, cert_registry=SimpleCertificateStore.from_certs([cert]),
                             signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "1.2.156.10197.1.501"}))

        async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
            return b"\0" * 72 if dry_run else sm2_math.sign(identity.signer_private, identity.signer_public, data)

    return Sm2Signer()
