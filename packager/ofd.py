"""OFD (GB/T 33190-2016, the national fixed-layout format) checked as an archive must: does the
container open, does OFD.xml lead through DocBody to Document.xml, does every page's content
resolve, is every font embedded or a standard one, and do the signatures' references still hold.

Electronic licences (电子证照) and decisions carrying an 电子印章 are issued as OFD, so a broken
part must be named precisely: every problem says which part of the container is wrong
("Doc_0/Pages/Page_1/Content.xml: listed as page 2 in Doc_0/Document.xml but not in the container").

Everything is read from the ZIP as a stream: XML parts are parsed from the member's stream (and
refused above `XML_PART_LIMIT`), signed files are digested chunk by chunk; no member is read whole.
A signature's references (Signature.xml, SignedInfo/References) are resolved and their digests
recomputed (SM3, SHA-256 or SHA-1 by CheckMethod); the signed value itself (SignedValue.dat, a
GB/T 38540 SM2 seal as a rule) is not verified, because no maintained library verifies those: such a
signature is recorded "present, not verified" (see packager/signatures.py), never valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lxml import etree

from schemas.signature_info import SignatureRecord, SignatureState

XML_PART_LIMIT = 16 * 1024 * 1024  # an OFD XML part larger than this is not parsed
OFD_FORMAT_NAME = "Open Fixed-layout Document (GB/T 33190-2016)"

# Fonts every OFD reader provides (GB/T 33190 readers carry the four Chinese faces and the Latin base
# faces); any other font must be embedded (Font/FontFile).
STANDARD_FONTS = frozenset({
    "宋体", "黑体", "楷体", "仿宋", "仿宋_gb2312", "楷体_gb2312", "方正书宋", "方正黑体", "方正楷体", "方正仿宋",
    "simsun", "nsimsun", "simhei", "kaiti", "fangsong", "kaiti_gb2312", "fangsong_gb2312", "stsong",
    "courier", "courier new", "times", "times new roman", "helvetica", "arial", "symbol",
    "新宋体", "微软雅黑", "microsoft yahei", "宋体-方正超大字符集",
})

# CheckMethod of Signature.xml/SignedInfo/References, as OID or name -> hashlib name.
_DIGESTS = {
    "1.2.156.10197.1.401": "sm3", "sm3": "sm3",
    "2.16.840.1.101.3.4.2.1": "sha256", "sha256": "sha256", "sha-256": "sha256",
    "1.3.14.3.2.26": "sha1", "sha1": "sha1", "sha-1": "sha1",
}
# SignatureMethod OIDs -> names, for the record.
_SIGNATURE_METHODS = {
    "1.2.156.10197.1.501": "SM2-with-SM3", "1.2.156.10197.1.301.1": "SM2",
    "1.2.840.113549.1.1.11": "RSA-with-SHA256", "1.2.840.10045.4.3.2": "ECDSA-with-SHA256",
}


@dataclass(frozen=True, slots=True)
class OfdInspection:
    version: str | None = None  # OFD.xml Version
    pages: int | None = None
    problems: tuple[str, ...] = ()  # each names the part: "Doc_0/Document.xml: …"
    font_problems: tuple[str, ...] = ()
    signatures: tuple[SignatureRecord, ...] = field(default_factory=tuple)

    @property
    def readable(self) -> bool:
        return not self.problems and not self.font_problems and bool(self.pages)


class _Broken(Exception):
    """A part that stops the walk (no OFD.xml, no Document.xml): nothing after it can be checked."""


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if _local(c) == name]


def _child(el: etree._Element, name: str) -> etree._Element | None:
    found = _children(el, name)
    return found[0] if found else None


def _text(el: etree._Element | None) -> str | None:
    return (el.text or "").strip() or None if el is not None else None


class _Container:
    """The ZIP, its member names, and part resolution as GB/T 33190 §7.5 puts it: a location
    starting with "/" is from the container root, any other is relative to the referring part's
    folder (a root-relative reading is accepted too, as several producers write them so)."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.names = {i.filename: i for i in zf.infolist() if not i.is_dir()}

    def resolve(self, loc: str, base: str) -> str | None:
        loc = loc.strip().replace("\\", "/")
        if not loc:
            return None
        candidates = [loc.lstrip("/")] if loc.startswith("/") else [
            str(PurePosixPath(base).parent / loc) if PurePosixPath(base).parent.name else loc, loc]
        for c in candidates:
            norm = _normalise(c)
            if norm is not None and norm in self.names:
                return norm
        return None

    def expected(self, loc: str, base: str) -> str:
        """Where a location points, for a message about a part that is not there."""
        loc = loc.strip().replace("\\", "/")
        parent = PurePosixPath(base).parent
        joined = loc.lstrip("/") if loc.startswith("/") or not parent.name else str(parent / loc)
        return _normalise(joined) or loc

    def parse(self, name: str) -> etree._Element:
        info = self.names[name]
        if info.file_size > XML_PART_LIMIT:
            raise _Broken(f"{name}: {info.file_size:,} bytes, above the {XML_PART_LIMIT:,}-byte limit for an XML part")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            with self.zf.open(info) as fh:
                return etree.parse(fh, parser).getroot()
        except etree.XMLSyntaxError as exc:
            raise _Broken(f"{name}: not well-formed XML ({exc})") from exc
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # bad CRC, cut member
            raise _Broken(f"{name}: cannot be read from the container ({exc})") from exc

    def digest(self, name: str, algorithm: str) -> bytes:
        h = hashlib.new(algorithm)
        with self.zf.open(self.names[name]) as fh:
            while chunk := fh.read(1024 * 1024):
                h.update(chunk)
        return h.digest()


def _normalise(path: str) -> str | None:
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


def inspect_ofd(path: Path) -> OfdInspection:
    """The OFD's version, pages, structural problems and signatures; never raises for bad input."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return OfdInspection(problems=(f"container: not a readable ZIP container ({exc})",))
    with zf:
        box = _Container(zf)
        problems: list[str] = []
        fonts: list[str] = []
        signatures: list[SignatureRecord] = []
        version = None
        pages = 0
        try:
            if "OFD.xml" not in box.names:
                raise _Broken("OFD.xml: missing from the container root")
            root = box.parse("OFD.xml")
            if _local(root) != "OFD":
                raise _Broken(f"OFD.xml: root element is {_local(root)!r}, not OFD")
            version = root.get("Version")
            if (root.get("DocType") or "OFD") != "OFD":
                problems.append(f"OFD.xml: DocType is {root.get('DocType')!r}, not OFD")
            bodies = _children(root, "DocBody")
            if not bodies:
                raise _Broken("OFD.xml: no DocBody")
            for n, body in enumerate(bodies, start=1):
                pages += _doc_body(box, body, n, problems, fonts, signatures)
        except _Broken as exc:
            problems.append(str(exc))
        return OfdInspection(version=version, pages=pages if not problems else (pages or None),
                             problems=tuple(problems), font_problems=tuple(fonts), signatures=tuple(signatures))


def _doc_body(box: _Container, body: etree._Element, n: int, problems: list[str], fonts: list[str],
              signatures: list[SignatureRecord]) -> int:
    loc = _text(_child(body, "DocRoot"))
    if loc is None:
        raise _Broken(f"OFD.xml: DocBody {n} has no DocRoot")
    doc_name = box.resolve(loc, "OFD.xml")
    if doc_name is None:
        raise _Broken(f"OFD.xml: DocBody {n} DocRoot {loc!r} is not in the container")
    doc = box.parse(doc_name)
    if _local(doc) != "Document":
        raise _Broken(f"{doc_name}: root element is {_local(doc)!r}, not Document")
    font_ids = _fonts(box, doc, doc_name, fonts)
    page_list = _child(doc, "Pages")
    page_elements = _children(page_list, "Page") if page_list is not None else []
    if not page_elements:
        problems.append(f"{doc_name}: Pages lists no page")
    for i, page in enumerate(page_elements, start=1):
        base = page.get("BaseLoc") or ""
        name = box.resolve(base, doc_name)
        if name is None:
            expected = box.expected(base, doc_name) if base else "(no BaseLoc)"
            problems.append(f"{expected}: listed as page {i} in {doc_name} but not in the container")
            continue
        try:
            content = box.parse(name)
        except _Broken as exc:
            problems.append(str(exc))
            continue
        if _local(content) != "Page":
            problems.append(f"{name}: root element is {_local(content)!r}, not Page")
            continue
        page_fonts = set(font_ids)
        for res_loc in filter(None, (_text(e) for e in content if _local(e) == "PageRes")):
            page_fonts |= _font_file(box, name, res_loc, fonts)
        for el in content.iter():
            ref = el.get("Font") if isinstance(el.tag, str) and _local(el) == "TextObject" else None
            if ref is not None and ref not in page_fonts:
                problems.append(f"{name}: page {i} uses font {ref!r}, which no resource file of {doc_name} declares")
                break
    sig_loc = _text(_child(body, "Signatures"))
    if sig_loc is not None:
        signatures += _signatures(box, sig_loc, problems)
    return len(page_elements)


def _fonts(box: _Container, doc: etree._Element, doc_name: str, fonts: list[str]) -> set[str]:
    """The font IDs the document's resource files declare; a font neither embedded nor standard,
    or whose embedded file is missing, is a font problem."""
    ids: set[str] = set()
    common = _child(doc, "CommonData")
    res_locs = [_text(e) for e in (common if common is not None else []) if _local(e) in ("PublicRes", "DocumentRes")]
    for loc in filter(None, res_locs):
        ids |= _font_file(box, doc_name, loc, fonts)
    return ids


def _font_file(box: _Container, referrer: str, loc: str, fonts: list[str]) -> set[str]:
    """The font IDs one resource file (PublicRes, DocumentRes or a page's PageRes) declares."""
    ids: set[str] = set()
    res_name = box.resolve(loc, referrer)
    if res_name is None:
        raise _Broken(f"{referrer}: resource file {loc!r} is not in the container")
    res = box.parse(res_name)
    res_base = res.get("BaseLoc") or ""
    for group in _children(res, "Fonts"):
        for font in _children(group, "Font"):
            fid = font.get("ID") or ""
            ids.add(fid)
            font_file = _text(_child(font, "FontFile"))
            label = f"{res_name}: font {fid} {font.get('FontName')!r}"
            if font_file is not None:
                folder = str(PurePosixPath(res_name).parent / res_base) + "/x" if res_base else res_name
                if box.resolve(font_file, folder) is None and box.resolve(font_file, res_name) is None:
                    fonts.append(f"{label}: embedded font file {font_file!r} is not in the container")
            elif (font.get("FontName") or "").strip().lower() not in STANDARD_FONTS:
                fonts.append(f"{label} is neither embedded nor a standard font")
    return ids


def _signatures(box: _Container, loc: str, problems: list[str]) -> list[SignatureRecord]:
    list_name = box.resolve(loc, "OFD.xml")
    if list_name is None:
        problems.append(f"OFD.xml: Signatures {loc!r} is not in the container")
        return []
    try:
        listing = box.parse(list_name)
    except _Broken as exc:
        problems.append(str(exc))
        return []
    records = []
    for n, sig in enumerate(_children(listing, "Signature"), start=1):
        base = sig.get("BaseLoc") or ""
        name = box.resolve(base, list_name)
        kind = sig.get("Type") or "Seal"
        if name is None:
            records.append(SignatureRecord(kind=f"OFD {kind}", state=SignatureState.INVALID,
                                           note=f"{list_name}: signature {n} {base!r} is not in the container"))
            continue
        records.append(_signature(box, name, kind))
    return records


def _signature(box: _Container, name: str, kind: str) -> SignatureRecord:
    try:
        root = box.parse(name)
    except _Broken as exc:
        return SignatureRecord(kind=f"OFD {kind}", state=SignatureState.INVALID, note=str(exc))
    info = _child(root, "SignedInfo")
    if info is None:
        return SignatureRecord(kind=f"OFD {kind}", state=SignatureState.INVALID, note=f"{name}: no SignedInfo")
    method = _text(_child(info, "SignatureMethod"))
    provider = _child(info, "Provider")
    refs = _child(info, "References")
    check_method = (refs.get("CheckMethod") if refs is not None else None) or "1.2.156.10197.1.401"
    algorithm = _DIGESTS.get(check_method.strip().lower())
    bad: list[str] = []
    count = 0
    for ref in _children(refs, "Reference") if refs is not None else []:
        count += 1
        file_ref = ref.get("FileRef") or ""
        target = box.resolve(file_ref, name)
        expected = _text(_child(ref, "CheckValue")) or ""
        if target is None:
            bad.append(f"{file_ref!r} is not in the container")
        elif algorithm is None:
            bad.append(f"CheckMethod {check_method!r} is not a digest guidang knows")
        else:
            try:
                ok = base64.b64decode(expected, validate=True) == box.digest(target, algorithm)
            except (binascii.Error, ValueError):
                ok = False
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                bad.append(f"{target} cannot be read ({exc})")
                continue
            if not ok:
                bad.append(f"{target}: {algorithm.upper()} differs from its CheckValue "
                           "(the file was changed after signing)")
    value_loc = _text(_child(root, "SignedValue"))
    value_name = box.resolve(value_loc, name) if value_loc else None
    if value_name is None:
        bad.append(f"SignedValue {value_loc!r} is not in the container")
    if count == 0:
        bad.append("References lists no signed file")
    common = {
        "kind": f"OFD {kind}",
        "method": _SIGNATURE_METHODS.get(method or "", method),
        "signing_time": _text(_child(info, "SignatureDateTime")),
        "signer": provider.get("ProviderName") if provider is not None else None,
        "references": count,
    }
    if bad:
        return SignatureRecord(state=SignatureState.INVALID, intact=False, note=f"{name}: " + "; ".join(bad), **common)
    return SignatureRecord(
        state=SignatureState.UNVERIFIED, intact=True,
        note=f"{name}: {count} signed file(s) match their digests; the signed value ({common['method'] or 'unknown'}) "
        "is not verified: no maintained library verifies GB/T 38540 seals",
        **common,
    )
