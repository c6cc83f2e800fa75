"""SM2 signatures in PDF (CMS SignedData with SM2-with-SM3, as Chinese signing tools write them)
verified with gmssl-pyx, and judged by the same rules as every PDF signature
(packager/signatures.py `_judge`): pyHanko has no SM3 or SM2 of its own, but its coverage level,
difference analysis and DocMDP level do not depend on the algorithm, so they are taken from it.

The signed byte ranges are hashed here with SM3, streamed from the file; with signed attributes
their messageDigest must equal it and the SM2 signature covers the attributes; without, the SM2
signature covers the byte ranges themselves, verified as the digest e = SM3(Z_A ‖ ranges) so that
the file is never held whole.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

from packager.sm2 import Certificate, DerError, chains_to, load_certificate, sm2_verify, z_value

_CHUNK = 1024 * 1024


def _ranges_sm3(sig: Any, prefix: bytes = b"") -> bytes:
    h = hashlib.new("sm3")
    h.update(prefix)
    stream = sig.reader.stream
    ranges = list(sig.byte_range)
    for start, length in zip(ranges[0::2], ranges[1::2], strict=True):
        stream.seek(start)
        while length > 0:
            chunk = stream.read(min(_CHUNK, length))
            if not chunk:
                break
            h.update(chunk)
            length -= len(chunk)
    return h.digest()


def sm2_status(sig: Any, roots: tuple[Certificate, ...]) -> tuple[SimpleNamespace, Certificate | None, str | None]:
    """A status with the fields `_judge` reads, the signer certificate, and why it could not be judged."""
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel

    info = sig.signer_info
    status = SimpleNamespace(intact=True, valid=True, trust_problem_indic=None, docmdp_ok=None, diff_result=None,
                             modification_level=None, trusted=None, md_algorithm="sm3",
                             pkcs7_signature_mechanism="SM2-with-SM3")
    try:
        cert = load_certificate(sig.signer_cert.dump())
    except (DerError, IndexError, ValueError, AttributeError) as exc:
        return status, None, f"the signer certificate cannot be read ({exc})"
    if cert.public_key is None:
        return status, cert, "the signer certificate's key is not an SM2 key"
    attrs = info["signed_attrs"]
    value = info["signature"].native
    if attrs.native:
        found = next((a["values"][0].native for a in attrs if a["type"].dotted == "1.2.840.113549.1.9.4"), None)
        status.intact = found == _ranges_sm3(sig)
        status.valid = sm2_verify(cert.public_key, b"\x31" + attrs.dump()[1:], value)
    else:
        status.valid = status.intact = sm2_verify(cert.public_key, _ranges_sm3(sig, z_value(cert.public_key)), value,
                                                  digest=True)
    coverage = sig.evaluate_signature_coverage()
    if coverage.name == "ENTIRE_REVISION":
        sig.coverage = coverage  # what pyHanko's own integrity pass sets before its difference analysis
        diff = sig.evaluate_modifications(DEFAULT_DIFF_POLICY)
        status.diff_result = diff
        level = diff.modification_level if isinstance(diff, DiffResult) else ModificationLevel.OTHER
        status.modification_level = level
        docmdp = sig.docmdp_level
        status.docmdp_ok = not (level == ModificationLevel.OTHER or (docmdp is not None and level.value > docmdp.value))
    elif coverage.name == "ENTIRE_FILE":
        status.modification_level, status.docmdp_ok = ModificationLevel.NONE, True
    if roots:
        status.trusted = chains_to(cert, roots)
    return status, cert, None
