"""Stage A of packaging: bring one matter's documents into a fresh staging folder and prove them.

Staging happens before the ledger allocates a 件号, so anything that would make the package
unacceptable (an unsafe name, a document the source cannot deliver, a digest or size that differs
from what the source declared, content that is not what its name says, a PDF that is broken,
encrypted, empty or too large to parse) is found here and the matter is quarantined without
consuming a number; 件号 stays gap-free. A name too long for the file system or equal to another's
in its folder is no fault of the matter: the document is stored under a safe name and 元数据 keeps
the original. Every document is streamed exactly once: the copy, SM3, SHA-256 and byte count come
out of the same pass; inspection reads the head and, for a PDF within the parse limit, what pypdf
seeks to. The format policy (schemas/format_policy.py) is applied last: a refused format is the
matter's quarantine, a format to normalise is kept and followed by its PDF/A rendition
(packager/normalise.py), which is inspected like any PDF.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from guidang_io.direct_io import DirectWriter
from packager.containers import identify_document, with_container
from packager.content import ContentInspection, ContentOptions, inspect_content
from packager.format_id import BUFFER_SIZE, best_pronom, identify_pronom, pronom_mismatch
from packager.formats import HEAD_SIZE, FormatInfo, claims_general_format, format_mismatch, is_pdf_claimed
from packager.held import Held
from packager.normalise import policy_action, render
from packager.pdf import PDF_PARSE_LIMIT, PdfInspection, inspect_pdf
from packager.quarantine_error import QuarantineError
from schemas.digest import copy_and_digest
from schemas.errors import DocumentUnavailable
from schemas.findings import Finding, GuidangError, Severity
from schemas.layout import document_path, is_dangerous_path, stored_names
from schemas.metadata import ConversionRecord, DocumentEntry
from schemas.model import Appraisal, Document, Matter, mask_text
from schemas.pickling import by_fields

Opener = Callable[[Document], Iterator[bytes]]
log = logging.getLogger("guidang")


@by_fields
@dataclass(frozen=True, slots=True)
class StagedDocument:
    """A document as it lies in the staging folder, with what staging learned about it."""

    document: Document
    path: str  # relative to the package folder: 材料类别/文件名
    size: int
    sha256: str
    sm3: str
    format: FormatInfo
    pages: int | None = None
    active_content: tuple[str, ...] = ()
    pdf: PdfInspection | None = None  # what pypdf found at staging; the package check reuses it
    content: ContentInspection | None = None  # PRONOM, OFD, signatures, virus scan (packager/content.py)
    conversion: ConversionRecord | None = None  # a rendition (转换件): how it was made, from which original

    @property
    def stored_name(self) -> str:
        """The name in the package: the source's, unless it was too long or taken (see stored_names)."""
        return self.path.split("/", 1)[1]

    def entry(self) -> DocumentEntry:
        original = self.document.file_name
        return DocumentEntry(
            group=self.document.group,
            title=self.document.title,
            file_name=self.stored_name,
            original_file_name=original if original != self.stored_name else None,
            path=self.path,
            format=self.format.name,
            media_type=self.format.media_type,
            size=self.size,
            sm3=self.sm3,
            sha256=self.sha256,
            pages=self.pages,
            format_name=self.content.format_name(self.format.name) if self.content else None,
            format_version=self.content.format_version(self.format.name) if self.content else None,
            pronom_id=self.content.puid(self.format.name) if self.content else None,
            signatures=(self.content.signatures or ()) if self.content else (),
            format_profile=self.content.format_profile if self.content else None,
            warnings=self.content.warnings(self.path) if self.content else (),
            conversion=self.conversion,
        )

    def source_digest(self) -> str:
        """What the source vouched for ("sha256:…"/"sm3:…"), else what was computed on arrival."""
        if self.document.source_sha256:
            return f"sha256:{self.document.source_sha256}"
        if self.document.source_sm3:
            return f"sm3:{self.document.source_sm3}"
        return f"sha256:{self.sha256}"


@by_fields
@dataclass(frozen=True, slots=True)
class StagedMatter:
    """A matter whose documents passed staging; `finalize_package` turns it into the package.

    `findings` are non-fatal observations for the checks (active content in a PDF, GD-4-3)."""

    matter: Matter
    appraisal: Appraisal
    folder: Path
    documents: tuple[StagedDocument, ...]
    findings: tuple[Finding, ...] = ()
    pdf_parse_limit: int | None = PDF_PARSE_LIMIT  # the package check parses PDFs within the same budget
    content_options: ContentOptions = field(default_factory=ContentOptions)  # the check judges alike


def staging_folder(staging_root: Path, matter: Matter) -> Path:
    """One folder per matter version: the same matter re-collected unchanged maps to the same
    folder (which a re-run clears first), a changed one (补充材料) to a new folder."""
    digest = hashlib.sha256(f"{matter.key}\n{matter.content_hash()}".encode()).hexdigest()
    return staging_root / f"m-{digest[:32]}"


def stage_matter(
    matter: Matter, appraisal: Appraisal, open_document: Opener, staging_root: Path,
    *, pdf_parse_limit: int | None = PDF_PARSE_LIMIT, content: ContentOptions | None = None,
) -> StagedMatter:
    """Stream the matter's documents (minus appraisal.excluded_groups) into a fresh staging folder.

    A PDF larger than `pdf_parse_limit` bytes is not parsed (Q-PDF-TOO-LARGE): no document is
    ever held in memory whole.

    Raises QuarantineError carrying every finding when anything is wrong with the matter;
    SourceUnavailable from the opener propagates untouched (transient: retry the matter later).
    The staging folder is removed whenever no StagedMatter is returned.
    """
    if not appraisal.in_scope:
        raise GuidangError(f"matter {matter.key}: appraisal says 不归档; it must not be packaged")
    folder = staging_folder(staging_root, matter)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        staged, findings = _stage_documents(matter, appraisal, open_document, folder, pdf_parse_limit,
                                            content or ContentOptions())
        errors = [f for f in findings if f.severity == Severity.ERROR]
        if errors:
            raise QuarantineError(matter.key, errors)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    notes = tuple(f for f in findings if f.severity != Severity.ERROR)
    return StagedMatter(matter=matter, appraisal=appraisal, folder=folder, documents=tuple(staged), findings=notes,
                        pdf_parse_limit=pdf_parse_limit, content_options=content or ContentOptions())


def _stage_documents(
    matter: Matter, appraisal: Appraisal, open_document: Opener, folder: Path, pdf_parse_limit: int | None,
    content: ContentOptions,
) -> tuple[list[StagedDocument], list[Finding]]:
    findings: list[Finding] = []
    excluded = set(appraisal.excluded_groups)
    documents = [d for d in matter.documents if d.group not in excluded]
    if not documents:
        findings.append(Finding(
            "Q-NO-DOCUMENTS", matter.key,
            f"no documents to archive ({len(matter.documents)} in the matter, "
            f"groups excluded by the retention rule: {', '.join(g.value for g in excluded) or 'none'})",
        ))

    safe: list[Document] = []
    for doc in documents:
        if is_dangerous_path(doc.file_name) or "/" in doc.file_name:
            findings.append(Finding(
                "Q-DOC-UNSAFE-NAME", f"{matter.key} {doc.group.value}/{doc.file_name!r}",
                "file name is not a single safe path segment (empty, absolute, '..', '.', '/', '\\' "
                "or control characters)",
                details={"group": doc.group.value, "file_name": doc.file_name},
            ))
            continue
        safe.append(doc)
    # Names too long for the file system, or equal to another's in the same folder, are stored
    # under a safe name (元数据 keeps the original): both documents are kept.
    fetchable: list[tuple[Document, str]] = []
    for group in dict.fromkeys(d.group for d in safe):
        in_group = [d for d in safe if d.group == group]
        fetchable += zip(in_group, stored_names([d.file_name for d in in_group]), strict=True)

    # each material folder made once, not once per document (a mkdir that finds the folder there
    # costs as much as one that makes it)
    for group_folder in dict.fromkeys(document_path(doc.group, name).split("/", 1)[0] for doc, name in fetchable):
        (folder / group_folder).mkdir()
    staged: list[StagedDocument] = []
    for doc, name in fetchable:
        result = _stage_one(matter, doc, name, open_document, folder, findings, pdf_parse_limit, content)
        if result is not None:
            staged.append(result)
    if content.policy is not None:
        staged = _apply_policy(matter, staged, folder, findings, pdf_parse_limit, content)
    return staged, findings


def _apply_policy(matter: Matter, staged: list[StagedDocument], folder: Path, findings: list[Finding],
                  pdf_parse_limit: int | None, content: ContentOptions) -> list[StagedDocument]:
    """The format policy over the staged documents: a refused format is the matter's quarantine
    (naming the policy row), a format to normalise is kept and followed by its PDF/A rendition."""
    out: list[StagedDocument] = []
    for doc in staged:
        action, row = policy_action(content, doc.format.name)
        where = f"{matter.key} {doc.path}"
        if action == "refuse":
            findings.append(Finding(
                "Q-FORMAT-REFUSED", where, f"format {doc.format.name} is refused by the format policy, {row}",
                details={"path": doc.path, "format": doc.format.name, "policy": row}))
            continue
        out.append(doc)
        if action != "normalise" or doc.format.name == "PDF":
            continue
        taken = [d.stored_name for d in staged if d.document.group == doc.document.group]
        name = stored_names([*taken, f"{doc.stored_name}.pdf"])[-1]
        rendition = render(folder / doc.path, doc.sha256, doc.format.name,
                           folder / document_path(doc.document.group, name), where, row, content, findings)
        if rendition is None:
            continue
        rel = document_path(doc.document.group, name)
        conversion, digests = rendition
        info = inspect_pdf(folder / rel, parse_limit=pdf_parse_limit)
        if not info.readable:
            findings.append(Finding("Q-CONVERSION-FAILED", where, f"the rendition {name} is not a readable PDF: "
                                    f"{info.error or 'encrypted or without pages'}", details={"path": doc.path}))
            continue
        inspection, _, _ = inspect_content(folder / rel, rel, f"{matter.key} {rel}", "PDF", True, content,
                                           findings, pdf_signed=info.signature_objects > 0)
        out.append(StagedDocument(
            document=Document(group=doc.document.group, title=f"{doc.document.title}（转换件）", file_name=name,
                              media_type="application/pdf", locator=f"{doc.document.locator}#rendition"),
            path=rel, size=digests.size, sha256=digests.sha256, sm3=digests.sm3,
            format=FormatInfo("PDF", "application/pdf", True), pages=info.pages, active_content=info.active_content,
            pdf=info, content=inspection,
            conversion=ConversionRecord(source_path=doc.path, tool=conversion.tool,
                                        tool_version=conversion.tool_version, source_format=doc.format.name,
                                        target_format=conversion.target_format),
        ))
    return out


def _stage_one(
    matter: Matter, doc: Document, name: str, open_document: Opener, folder: Path, findings: list[Finding],
    pdf_parse_limit: int | None, content: ContentOptions,
) -> StagedDocument | None:
    rel = document_path(doc.group, name)
    where = f"{matter.key} {rel}" if name == doc.file_name else f"{matter.key} {rel} (source name {doc.file_name!r})"
    dest = folder / rel  # its material folder was made by _stage_documents
    held = Held()
    try:
        blocks = held.keep(open_document(doc))  # kept as they pass, for the inspection below
        with DirectWriter(dest) as fh:  # to the medium, not the page cache (guidang_io/direct_io.py)
            digests = copy_and_digest(blocks, fh)
    except DocumentUnavailable as exc:
        dest.unlink(missing_ok=True)
        findings.append(Finding("Q-DOC-FETCH-FAILED", where, mask_text(str(exc)), details={"path": rel}))
        return None

    problem = False
    if doc.size is not None and doc.size != digests.size:
        problem = True
        findings.append(Finding(
            "Q-DOC-SIZE-MISMATCH", where, f"source declared {doc.size} bytes, received {digests.size}",
            details={"path": rel, "expected": doc.size, "found": digests.size},
        ))
    for algorithm, expected, found in (
        ("SHA-256", doc.source_sha256, digests.sha256),
        ("SM3", doc.source_sm3, digests.sm3),
    ):
        if expected is not None and expected != found:
            problem = True
            findings.append(Finding(
                "Q-DOC-DIGEST-MISMATCH", where, f"{algorithm} expected {expected}, found {found}",
                details={"path": rel, "algorithm": algorithm, "expected": expected, "found": found},
            ))

    fmt, pages, active, readable, inspection, pdf = _inspect(dest, held, rel, where, doc.media_type, findings,
                                                             pdf_parse_limit, content)
    problem = problem or not readable
    if problem:
        return None
    return StagedDocument(
        document=doc, path=rel, size=digests.size, sha256=digests.sha256, sm3=digests.sm3,
        format=fmt, pages=pages, active_content=active, content=inspection, pdf=pdf,
    )


def _inspect(
    dest: Path, held: Held, rel: str, where: str, media_type: str | None, findings: list[Finding],
    pdf_parse_limit: int | None, content: ContentOptions,
) -> tuple[FormatInfo, int | None, tuple[str, ...], bool, ContentInspection | None, PdfInspection | None]:
    """Format, pages, active content, whether the staged file is fit to keep, and the content
    inspection (PRONOM, OFD structure, signatures, virus scan), from its first bytes, pypdf for a
    PDF within the parse limit, and packager/content.py. Content that is positively another format
    than its name says is Q-FORMAT-MISMATCH (a ZIP named .pdf is not a broken PDF, nor is an RTF file
    PRONOM recognises); a file that claims PDF and carries no known signature must open as a PDF."""
    name = rel.split("/", 1)[1]
    window = held.head(BUFFER_SIZE)
    if window is None:  # too large to keep: the file is read instead
        with dest.open("rb") as fh:
            head = fh.read(HEAD_SIZE)
        pronom = identify_pronom(dest)
    else:
        head, pronom = window[:HEAD_SIZE], best_pronom(window, held.tail(BUFFER_SIZE) or b"")
    fmt, container = identify_document(dest, head, name, media_type)
    pronom = with_container(pronom, container)
    mismatch = format_mismatch(head, name, media_type, container.name if container else None)
    if mismatch is None and claims_general_format(head, name):
        mismatch = pronom_mismatch(pronom, name)
    if mismatch is not None:
        findings.append(Finding("Q-FORMAT-MISMATCH", where, mismatch,
                                details={"path": rel, "format": fmt.name}))
        return fmt, None, (), False, None, None
    if fmt.name != "PDF" and not (fmt.name == "UNKNOWN" and is_pdf_claimed(name, media_type)):
        inspection, pages, keep = inspect_content(dest, rel, where, fmt.name, False, content, findings, pronom)
        return fmt, pages, (), keep, inspection, None
    info = inspect_pdf(dest, parse_limit=pdf_parse_limit, held=held.reader())
    for note in (info.warning_note, info.content_errors):
        if note is not None:  # one line per document, never pypdf's own lines
            log.warning("%s: %s", where, note)
            findings.append(Finding("GD-3-3", where, note, severity=Severity.WARNING, details={"path": rel}))
    if info.encrypted:
        findings.append(Finding("Q-PDF-ENCRYPTED", where, info.encryption_message,
                                details={"path": rel, "encryption": info.encryption}))
    elif info.too_large:
        findings.append(Finding("Q-PDF-TOO-LARGE", where, info.error or "", details={"path": rel}))
    elif info.error is not None:
        findings.append(Finding("Q-PDF-BROKEN", where, info.error, details={"path": rel}))
    elif not info.pages:
        findings.append(Finding("Q-PDF-NO-PAGES", where, "PDF page tree holds no page", details={"path": rel}))
    if info.active_content:
        findings.append(Finding(
            "GD-4-3", where, "active content: " + "; ".join(info.active_content),
            severity=Severity.WARNING, details={"path": rel, "active_content": list(info.active_content)},
        ))
    if not info.readable:
        return fmt, info.pages, info.active_content, False, None, info
    inspection, _, keep = inspect_content(dest, rel, where, fmt.name, True, content, findings, pronom,
                                          pdf_signed=info.signature_objects > 0)
    return fmt, info.pages, info.active_content, keep, inspection, info
