"""The demo world's defective matters: one completed matter spoiled per kind, so that a night shows
each way guidang refuses a matter at the source, in the connector or in the packager."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from guidang_demo.pdfs import make_broken_pdf

# What each defect looks like at the source, and where guidang is expected to catch it.
DEFECT_KINDS: dict[str, str] = {
    "broken_pdf": "a document is a truncated PDF (digest and size match it): the packager's PDF check",
    "missing_file": "a listed document is not on the server (404): DocumentUnavailable",
    "unknown_matter_type": "SERVICETYPE is 99: the connector yields an InvalidMatter",
    "missing_field": "APPLYERNAME is absent: the connector yields an InvalidMatter",
    "unsafe_file_name": "a FILENAME escapes its folder (../../etc/passwd): the packager's path gate",
    "wrong_digest": "a MATERIALS SHA256 does not match the bytes: the packager's fixity check",
}


def inject_defects(
    rng: random.Random, completed: list[dict[str, Any]], payloads: dict[str, bytes]
) -> dict[str, list[str]]:
    """Spoil one distinct completed matter per defect kind; return {kind: [PROJID]}."""
    # Draw from matters with at least two documents so a spoiled one still leaves a normal one.
    candidates = sorted((m for m in completed if len(m["MATERIALS"]) >= 2), key=lambda m: m["PROJID"])
    victims = rng.sample(candidates, len(DEFECT_KINDS))
    defects: dict[str, list[str]] = {}
    for kind, m in zip(DEFECT_KINDS, victims, strict=True):
        mats = m["MATERIALS"]
        if kind == "broken_pdf":
            mat = mats[-1]
            data = make_broken_pdf([f"PROJID {m['PROJID']}", f"FILEID {mat['FILEID']}", "broken on purpose"])
            payloads[mat["FILEID"]] = data
            mat["FILENAME"] = mat["FILENAME"].removesuffix(".ofd").removesuffix(".pdf") + ".pdf"
            mat["FILETYPE"] = "application/pdf"
            mat["FILESIZE"] = len(data)
            mat["SHA256"] = hashlib.sha256(data).hexdigest()
        elif kind == "missing_file":
            del payloads[mats[0]["FILEID"]]
        elif kind == "unknown_matter_type":
            m["SERVICETYPE"] = "99"
        elif kind == "missing_field":
            del m["APPLYERNAME"]
        elif kind == "unsafe_file_name":
            mats[0]["FILENAME"] = "../../etc/passwd"
        elif kind == "wrong_digest":
            mat = mats[-1]
            mat["SHA256"] = hashlib.sha256(b"not these bytes:" + payloads[mat["FILEID"]]).hexdigest()
        defects[kind] = [m["PROJID"]]
    return defects
