"""The format policy applied at staging: refuse, keep, or keep and add a PDF/A rendition (转换件).

The original is never touched: the rendition is a new file beside it, the package lists both, and
元数据 records the conversion on the rendition's entry (格式转换). A conversion that fails or
passes its time limit quarantines the matter Q-CONVERSION-FAILED with the converter's message; a
machine without LibreOffice quarantines it Q-CONVERTER-MISSING. Either is retried like any
quarantined matter once the file, the policy or the machine has changed; neither stops the night.
"""

from __future__ import annotations

import os
from pathlib import Path

from guidang_io.block_reads import digest_file
from packager.content import ContentOptions
from packager.convert import Conversion, ConversionError, ConverterMissing, convert_to_pdfa
from schemas.digest import Digests
from schemas.findings import Finding
from schemas.format_policy import Action
from schemas.model import mask_text

# The extension LibreOffice is shown for each format (it picks its import filter by it and by the
# content); Kingsoft's own formats are read as the Microsoft format their container holds.
_CONVERTS_AS = {"DOC": "doc", "DOCX": "docx", "RTF": "rtf", "ODT": "odt", "XLS": "xls", "XLSX": "xlsx",
                "ODS": "ods", "PPT": "ppt", "PPTX": "pptx", "ODP": "odp", "ODG": "odg", "HTML": "html",
                "TXT": "txt", "XML": "xml"}
_KINGSOFT_AS = {"WPS": ("doc", "docx"), "ET": ("xls", "xlsx"), "DPS": ("ppt", "pptx")}


def policy_action(options: ContentOptions, format_name: str) -> tuple[Action, str]:
    if options.policy is None:
        return "keep", "no format policy"
    return options.policy.decide(format_name)


def converts_as(path: Path, format_name: str) -> str:
    if format_name in _KINGSOFT_AS:
        with path.open("rb") as fh:
            zipped = fh.read(4) == b"PK\x03\x04"
        return _KINGSOFT_AS[format_name][1 if zipped else 0]
    return _CONVERTS_AS.get(format_name, format_name.lower())


def render(original: Path, sha256: str, format_name: str, target: Path, where: str, row: str,
           options: ContentOptions, findings: list[Finding]) -> tuple[Conversion, Digests] | None:
    """Convert `original` (whose SHA-256 is `sha256`) to a PDF/A-2b at `target`; the conversion
    and the rendition's digests, or None with the finding that quarantines the matter."""
    rel = "/".join(original.parts[-2:])
    try:
        conversion = convert_to_pdfa(original, converts_as(original, format_name), target, options.converter,
                                     sha256)
    except ConverterMissing as exc:
        findings.append(Finding("Q-CONVERTER-MISSING", where, f"{format_name} is to be normalised ({row}): {exc}",
                                details={"path": rel, "format": format_name, "policy": row}))
        return None
    except ConversionError as exc:
        target.unlink(missing_ok=True)
        findings.append(Finding("Q-CONVERSION-FAILED", where, mask_text(f"{format_name} to PDF/A-2b: {exc}"),
                                details={"path": rel, "format": format_name, "policy": row}))
        return None
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return conversion, digest_file(target)
