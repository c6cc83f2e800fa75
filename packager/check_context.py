"""What the 四性检测 items of one package share: the folder's inventory, its manifests, its
metadata, and the digests, formats and PDF inspections, each measured at most once per check.

The items live in two modules (packager/checks.py: structure and metadata; packager/
content_checks.py: fixity, formats, PDFs, viruses) and both read this one context, which is
why it is a module of its own.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from guidang_io.block_reads import digest_file
from packager.check_report import CheckItem, Level, Status
from packager.containers import identify_container, identify_document, with_container
from packager.content import ContentInspection, ContentOptions
from packager.format_id import PronomMatch, identify_pronom
from packager.formats import HEAD_SIZE, FormatInfo, is_pdf_claimed
from packager.ofd import OfdInspection, inspect_ofd
from packager.pdf import PDF_PARSE_LIMIT, PdfInspection, inspect_pdf
from packager.signatures import PdfSignatureInspection, inspect_pdf_signatures
from packager.virus import VirusResult
from schemas.digest import Digests
from schemas.findings import Finding
from schemas.layout import (
    GROUP_FOLDERS,
    METADATA_FILE,
)
from schemas.manifest import read_manifest
from schemas.metadata import MetadataView

# -- the context shared by the items ---------------------------------------------------------------

@dataclass(frozen=True)
class KnownFacts:
    """What the packager measured while it wrote the package: staging's one pass over each document
    (digests, format, PDF inspection) and the 元数据.xml it built and validated in memory.

    The 归档 check of a package being built takes these instead of reading every document again; the
    bytes are proved once more where it matters, by the repository's read-back against the same
    digests. `guidang check` on a stored package passes none and measures everything itself."""

    digests: Mapping[str, Digests] = field(default_factory=dict)
    formats: Mapping[str, FormatInfo] = field(default_factory=dict)
    pdfs: Mapping[str, PdfInspection] = field(default_factory=dict)
    content: Mapping[str, ContentInspection] = field(default_factory=dict)  # PRONOM, OFD, signatures, virus
    metadata: etree._ElementTree | None = None  # already valid against metadata.xsd
    # Files the package will hold that are built but not written yet (元数据.xml, the manifests):
    # the precheck before numbering judges them in memory, and its provisional package never
    # touches the disk (night/staging.precheck).
    unwritten: Mapping[str, bytes] = field(default_factory=dict)


@dataclass
class PackageUnderCheck:
    folder: Path
    level: Level
    files: dict[str, int] = field(default_factory=dict)  # relative path -> size, regular files only
    links: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    metadata: MetadataView | None = None
    metadata_error: str | None = None
    manifests: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> {path: digest}
    manifest_findings: list[Finding] = field(default_factory=list)
    pdf_parse_limit: int | None = PDF_PARSE_LIMIT  # a larger PDF is reported, not parsed (GD-3-3)
    _digests: dict[str, Digests] = field(default_factory=dict)
    _formats: dict[str, FormatInfo] = field(default_factory=dict)
    _pdfs: dict[str, PdfInspection] = field(default_factory=dict)
    # What staging already learned per document (packager/content.py), so the package check of a
    # fresh package reads each inspection instead of repeating it; empty for a stored package.
    options: ContentOptions = field(default_factory=ContentOptions)
    staged: dict[str, ContentInspection] = field(default_factory=dict)
    _pronom: dict[str, PronomMatch | None] = field(default_factory=dict)
    _ofds: dict[str, OfdInspection] = field(default_factory=dict)
    _signatures: dict[str, PdfSignatureInspection] = field(default_factory=dict)
    _viruses: dict[str, VirusResult] = field(default_factory=dict)
    unwritten: Mapping[str, bytes] = field(default_factory=dict)

    def take(self, known: KnownFacts) -> None:
        """Seed the caches with what the packager already measured (see KnownFacts); the files it
        has not written yet join the inventory as if they were there."""
        self.unwritten = known.unwritten
        for rel, data in known.unwritten.items():
            self.files[rel] = len(data)
        self._digests.update(known.digests)
        self._formats.update(known.formats)
        self._pdfs.update(known.pdfs)
        self.staged.update(known.content)

    def digests(self, rel: str) -> Digests:
        if rel not in self._digests:
            self._digests[rel] = digest_file(self.folder / rel)
        return self._digests[rel]

    def format(self, rel: str, declared: str | None) -> FormatInfo:
        if rel not in self._formats:
            with (self.folder / rel).open("rb") as fh:
                head = fh.read(HEAD_SIZE)
            self._formats[rel], _ = identify_document(self.folder / rel, head, rel, declared)
        return self._formats[rel]

    def pdf(self, rel: str) -> PdfInspection:
        if rel not in self._pdfs:
            self._pdfs[rel] = inspect_pdf(self.folder / rel, parse_limit=self.pdf_parse_limit)
        return self._pdfs[rel]

    def pronom(self, rel: str) -> PronomMatch | None:
        if rel not in self._pronom:
            known = self.staged.get(rel)
            if known is not None:
                self._pronom[rel] = known.pronom
            else:
                with (self.folder / rel).open("rb") as fh:
                    head = fh.read(HEAD_SIZE)
                container = identify_container(self.folder / rel, head)
                self._pronom[rel] = with_container(identify_pronom(self.folder / rel), container)
        return self._pronom[rel]

    def ofd(self, rel: str) -> OfdInspection:
        if rel not in self._ofds:
            known = self.staged.get(rel)
            staged = known.ofd if known is not None else None
            self._ofds[rel] = staged if staged is not None else inspect_ofd(self.folder / rel, self.options.ofd)
        return self._ofds[rel]

    def pdf_signatures(self, rel: str) -> PdfSignatureInspection:
        if rel not in self._signatures:
            known = self.staged.get(rel)
            if known is not None and known.pdf_signatures is not None:
                self._signatures[rel] = known.pdf_signatures
            elif not self.pdf(rel).signature_objects:  # staging's rule: pypdf's walk met no signature
                self._signatures[rel] = PdfSignatureInspection()  # field or value, so pyHanko would find none
            else:
                self._signatures[rel] = inspect_pdf_signatures(self.folder / rel, self.options.trust_roots)
        return self._signatures[rel]

    def virus(self, rel: str) -> VirusResult | None:
        """The scan of one document, None when no scanner is configured."""
        if self.options.virus is None:
            return None
        if rel not in self._viruses:
            known = self.staged.get(rel)
            if known is not None and known.virus is not None:
                self._viruses[rel] = known.virus
            else:
                self._viruses[rel] = self.options.virus.scan(self.folder / rel)
        return self._viruses[rel]

    def content_files(self) -> dict[str, int]:
        return {p: s for p, s in self.files.items() if p.split("/", 1)[0] in GROUP_FOLDERS and "/" in p}

    def expected_paths(self) -> set[str] | None:
        """What the manifests must list: every document of the metadata and 元数据.xml."""
        if self.metadata is None:
            return None
        return {d.path for d in self.metadata.documents if d.path} | {METADATA_FILE}

    def is_pdf(self, rel: str, declared_format: str | None, media_type: str | None) -> bool:
        return (
            declared_format == "PDF"
            or is_pdf_claimed(rel, media_type)
            or self.format(rel, media_type).name == "PDF"
        )


def take_inventory(pkg: PackageUnderCheck) -> None:
    """Every file (with its size), folder and link or other special entry of the package, in
    os.walk's order (a folder's entries, then its sub-folders in listing order; links never followed).

    Why scandir and not os.walk over Paths: a directory entry already knows whether it is a link, a
    folder or a file, so a file costs one stat (its size) instead of three (is_symlink, is_file, stat)
    and no Path objects; a night checks every package twice (staging's precheck and the real one)."""
    _inventory(os.fspath(pkg.folder), "", pkg)


def _inventory(folder: str, prefix: str, pkg: PackageUnderCheck) -> None:
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError:  # as os.walk: a folder that cannot be listed is skipped
        return
    folders: list[os.DirEntry[str]] = []
    others: list[os.DirEntry[str]] = []
    for entry in entries:
        try:
            is_folder = entry.is_dir()  # follows a link, as os.walk sorts its entries
        except OSError:
            is_folder = False
        (folders if is_folder else others).append(entry)
    for entry in sorted(folders, key=lambda e: e.name):
        (pkg.links if entry.is_symlink() else pkg.folders).append(prefix + entry.name)
    for entry in others:
        rel = prefix + entry.name
        if not entry.is_symlink() and entry.is_file():
            pkg.files[rel] = entry.stat().st_size
        else:
            pkg.links.append(rel)  # links, sockets, fifos: not something a package may hold
    for entry in folders:
        if not entry.is_symlink():
            _inventory(entry.path, prefix + entry.name + "/", pkg)


def read_package_manifest(pkg: PackageUnderCheck, name: str) -> None:
    path = pkg.folder / name
    if name in pkg.unwritten:
        manifest = read_manifest(io.StringIO(pkg.unwritten[name].decode("utf-8", errors="replace"), newline="\n"))
    elif not path.is_file():
        pkg.manifest_findings.append(Finding("GD-1-2", name, "manifest is missing"))
        return
    else:
        with path.open("r", encoding="utf-8", errors="replace", newline="\n") as fh:
            manifest = read_manifest(fh)
    for p in manifest.problems:
        pkg.manifest_findings.append(Finding("GD-1-2", f"{name}:{p.line}", p.message))
    pkg.manifests[name] = manifest.entries


def item_result(code: str, findings: list[Finding], ok: str, *, applicable: bool = True) -> CheckItem:
    if not applicable:
        return CheckItem(code, Status.NOT_APPLICABLE, ok)
    if findings:
        return CheckItem(code, Status.FAIL, f"{len(findings)} problem(s)", findings)
    return CheckItem(code, Status.PASS, ok)


def no_metadata(code: str) -> CheckItem:
    return CheckItem(code, Status.NOT_PERFORMED, "元数据.xml is missing or unreadable (see GD-3-1)")


def skipped_at_quick(code: str, what: str) -> CheckItem:
    return CheckItem(code, Status.NOT_PERFORMED, f"quick level: {what} not performed")


