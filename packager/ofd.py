"""OFD (GB/T 33190-2016, the national fixed-layout format) checked as readers and the archive need
it: does the container open, does OFD.xml lead through DocBody to Document.xml, does every listed
page's content resolve with the resources it uses, and do the signatures and seals hold
(packager/ofd_seals.py).

Electronic licences (电子证照) and decisions carrying an 电子印章 are issued as OFD by many
producers, so the line between a problem and a warning follows what readers do. What stops a page
from rendering (DocRoot, Document.xml, a listed page's content, a resource or font a page uses that
no resource file declares, an embedded font file that is missing) is a problem naming the part, and
quarantines. What readers tolerate is a warning recorded in 元数据 and the 检测报告: a font neither
embedded nor among the standard faces (readers substitute; most 公文 never embed their 小标宋 title
face) and a referenced resource file that is missing while no page uses anything from it. Fonts
become problems only when the configuration asks (`ofd.require_embedded_fonts`).

Both profiles a conforming producer writes are accepted (OFD.xml `DocType` "OFD", and "OFD-A",
the archival profile) and the profile is recorded. Identical findings are reported once with a
count, and the container is read within limits (packager/ofd_container.py).
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

from lxml import etree

from packager.ofd_container import Broken, Container, OfdLimits, child, children, local, text
from packager.ofd_seals import SealOptions, inspect_signatures
from packager.sm2 import Certificate, DerError, load_certificates
from schemas.config import Settings
from schemas.findings import GuidangError
from schemas.ofd_config import DEFAULT_STANDARD_FONTS, OfdConfig
from schemas.pickling import by_fields
from schemas.signature_info import SignatureRecord

OFD_FORMAT_NAME = "Open Fixed-layout Document (GB/T 33190-2016)"
DOC_TYPES = frozenset({"OFD", "OFD-A"})
FONT_WARNING = "W-OFD-FONT-NOT-EMBEDDED"
RESOURCE_WARNING = "W-OFD-RESOURCE-MISSING"

# Resource groups of a Res file and the elements in them that declare an ID pages refer to.
_RESOURCE_GROUPS = ("Fonts", "ColorSpaces", "DrawParams", "MultiMedias", "CompositeGraphicUnits")


@by_fields
@dataclass(frozen=True, slots=True)
class OfdOptions:
    """What the configuration says about OFD (`ofd:` and `signatures:` in guidang.yaml)."""

    standard_fonts: frozenset[str] = frozenset(f.casefold() for f in DEFAULT_STANDARD_FONTS)
    require_embedded_fonts: bool = False
    limits: OfdLimits = field(default_factory=OfdLimits)
    seals: SealOptions = field(default_factory=SealOptions)


@by_fields
@dataclass(frozen=True, slots=True)
class OfdWarning:
    code: str  # schemas/codes/ofd.yaml
    message: str  # names the part
    count: int = 1


@by_fields
@dataclass(frozen=True, slots=True)
class OfdInspection:
    version: str | None = None  # OFD.xml Version
    doc_type: str | None = None  # OFD.xml DocType: OFD or OFD-A
    pages: int | None = None
    problems: tuple[str, ...] = ()  # each names the part: "Doc_0/Document.xml: …"; each quarantines
    warnings: tuple[OfdWarning, ...] = ()
    signatures: tuple[SignatureRecord, ...] = field(default_factory=tuple)
    read_bytes: int = 0  # decompressed bytes the inspection read (each part once, within the limit)

    @property
    def readable(self) -> bool:
        return not self.problems and bool(self.pages)


class _Walk:
    """One inspection's findings, each distinct one kept once with how often it occurred."""

    def __init__(self, box: Container, options: OfdOptions) -> None:
        self.box = box
        self.options = options
        self.problems: Counter[str] = Counter()
        self.warnings: Counter[tuple[str, str]] = Counter()

    def problem(self, message: str) -> None:
        self.problems[message] += 1

    def warn(self, code: str, message: str) -> None:
        if code == FONT_WARNING and self.options.require_embedded_fonts:
            self.problem(message)
        else:
            self.warnings[(code, message)] += 1


def _counted(message: str, n: int) -> str:
    return message if n == 1 else f"{message} ({n} times)"


def inspect_ofd(path: Path, options: OfdOptions | None = None) -> OfdInspection:
    """The OFD's version, profile, pages, problems, warnings and signatures; never raises for bad input."""
    options = options or OfdOptions()
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return OfdInspection(problems=(f"container: not a readable ZIP container ({exc})",))
    with zf:
        walk = _Walk(Container(zf, options.limits), options)
        signatures: list[SignatureRecord] = []
        version = doc_type = None
        pages = 0
        try:
            if "OFD.xml" not in walk.box.names:
                raise Broken("OFD.xml: missing from the container root")
            root = walk.box.parse("OFD.xml")
            if local(root) != "OFD":
                raise Broken(f"OFD.xml: root element is {local(root)!r}, not OFD")
            version = root.get("Version")
            doc_type = (root.get("DocType") or "OFD").strip()
            if doc_type not in DOC_TYPES:
                walk.problem(f"OFD.xml: DocType is {doc_type!r}, neither OFD nor OFD-A")
            bodies = children(root, "DocBody")
            if not bodies:
                raise Broken("OFD.xml: no DocBody")
            for n, body in enumerate(bodies, start=1):
                pages += _doc_body(walk, body, n)
                sig_loc = text(child(body, "Signatures"))
                if sig_loc is not None and not walk.problems:
                    signatures += inspect_signatures(walk.box, sig_loc, options.seals, walk.problem, walk.warn)
        except Broken as exc:
            walk.problem(str(exc))
        return OfdInspection(
            version=version, doc_type=doc_type, pages=pages if not walk.problems else (pages or None),
            problems=tuple(_counted(m, n) for m, n in walk.problems.items()),
            warnings=tuple(OfdWarning(c, m, n) for (c, m), n in walk.warnings.items()),
            signatures=tuple(signatures), read_bytes=walk.box.spent)


def _doc_body(walk: _Walk, body: etree._Element, n: int) -> int:
    box = walk.box
    loc = text(child(body, "DocRoot"))
    if loc is None:
        raise Broken(f"OFD.xml: DocBody {n} has no DocRoot")
    doc_name = box.resolve(loc, "OFD.xml")
    if doc_name is None:
        raise Broken(f"OFD.xml: DocBody {n} DocRoot {loc!r} is not in the container")
    doc = box.parse(doc_name)
    if local(doc) != "Document":
        raise Broken(f"{doc_name}: root element is {local(doc)!r}, not Document")
    common = child(doc, "CommonData")
    declared: set[str] = set()
    for el in common if common is not None else []:
        if local(el) in ("PublicRes", "DocumentRes") and text(el):
            declared |= _resources(walk, doc_name, text(el) or "")
    page_elements = children(child(doc, "Pages"), "Page")
    if not page_elements:
        walk.problem(f"{doc_name}: Pages lists no page")
    if len(page_elements) > box.limits.max_pages:
        raise Broken(f"{doc_name}: lists {len(page_elements):,} pages, above the limit of "
                     f"{box.limits.max_pages:,} pages for one OFD")
    checked: set[str] = set()
    missing: dict[str, int] = {}  # a missing part listed as many pages: named with its first page, counted
    for i, page in enumerate(page_elements, start=1):
        base = page.get("BaseLoc") or ""
        name = box.resolve(base, doc_name)
        if name is None:
            expected = box.expected(base, doc_name) if base else "(no BaseLoc)"
            first = missing.setdefault(expected, i)
            walk.problem(f"{expected}: listed as page {first} in {doc_name} but not in the container")
        elif name not in checked:  # one content part listed as many pages is checked once
            checked.add(name)
            _page(walk, name, i, doc_name, declared)
    return len(page_elements)


def _page(walk: _Walk, name: str, i: int, doc_name: str, declared: set[str]) -> None:
    try:
        content = walk.box.parse(name)
    except Broken as exc:
        if walk.box.spent > walk.box.limits.max_decompressed_bytes:
            raise
        walk.problem(str(exc))
        return
    if local(content) != "Page":
        walk.problem(f"{name}: root element is {local(content)!r}, not Page")
        return
    known = set(declared)
    for res_loc in filter(None, (text(e) for e in content if local(e) == "PageRes")):
        known |= _resources(walk, name, res_loc)
    for el in content.iter():
        if not isinstance(el.tag, str):
            continue
        kind = local(el)
        ref = el.get("Font") if kind == "TextObject" else el.get("ResourceID") if kind in (
            "ImageObject", "CompositeObject") else None
        if ref is not None and ref.strip() not in known:
            what = "font" if kind == "TextObject" else "resource"
            walk.problem(f"{name}: page {i} uses {what} {ref!r}, which no resource file of {doc_name} declares")
            return


def _resources(walk: _Walk, referrer: str, loc: str) -> set[str]:
    """The resource IDs one resource file (PublicRes, DocumentRes or a page's PageRes) declares.
    A missing file is a warning: if a page uses one of its resources, the page's own check says so."""
    box = walk.box
    res_name = box.resolve(loc, referrer)
    if res_name is None:
        walk.warn(RESOURCE_WARNING, f"{box.expected(loc, referrer)}: resource file named in {referrer} is not in "
                  "the container")
        return set()
    try:
        res = box.parse(res_name)
    except Broken as exc:
        if box.spent > box.limits.max_decompressed_bytes:
            raise
        walk.problem(str(exc))
        return set()
    res_base = res.get("BaseLoc") or ""
    folder = str(PurePosixPath(res_name).parent / res_base) + "/x" if res_base else res_name
    ids: set[str] = set()
    for group in (g for g in res if local(g) in _RESOURCE_GROUPS):
        for item in group:
            if isinstance(item.tag, str) and item.get("ID"):
                ids.add((item.get("ID") or "").strip())
        for font in children(group, "Font"):
            _font(walk, res_name, folder, font)
    return ids


def _font(walk: _Walk, res_name: str, folder: str, font: etree._Element) -> None:
    box = walk.box
    name = (font.get("FontName") or "").strip()
    label = f"{res_name}: font {font.get('ID') or ''} {name!r}"
    font_file = text(child(font, "FontFile"))
    if font_file is not None:
        if box.resolve(font_file, folder) is None and box.resolve(font_file, res_name) is None:
            walk.problem(f"{label}: embedded font file {font_file!r} is not in the container")
    elif name.casefold() not in walk.options.standard_fonts and \
            (font.get("FamilyName") or "").strip().casefold() not in walk.options.standard_fonts:
        walk.warn(FONT_WARNING, f"{label} is neither embedded nor a standard face (readers substitute it)")


def ofd_options(settings: Settings) -> OfdOptions:
    """The configuration's `ofd:` and `signatures:` as the inspection takes them (certificates read once)."""
    cfg = getattr(settings, "ofd", None) or OfdConfig()  # a partial settings object (tests, tools) has none
    paths = settings.signatures
    return OfdOptions(
        standard_fonts=frozenset(f.casefold() for f in cfg.standard_fonts),
        require_embedded_fonts=cfg.require_embedded_fonts,
        limits=OfdLimits(max_pages=cfg.max_pages, max_references=cfg.max_signature_references,
                         max_signatures=cfg.max_signatures,
                         max_decompressed_bytes=cfg.max_decompressed_mb * 1024 * 1024),
        seals=SealOptions(roots=_certificates(tuple(str(settings.resolve(p)) for p in paths.trust_roots)),
                          signers=_certificates(tuple(str(settings.resolve(p)) for p in paths.signer_certificates))))


@cache
def _certificates(paths: tuple[str, ...]) -> tuple[Certificate, ...]:
    certs: list[Certificate] = []
    for p in paths:
        try:
            certs += load_certificates(Path(p).read_bytes())
        except (OSError, DerError, IndexError) as exc:
            raise GuidangError(f"signatures: certificate file {p} cannot be read ({exc})") from exc
    return tuple(certs)
