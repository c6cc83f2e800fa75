"""What guidang learns from a document's content beyond its digests: the PRONOM identification,
an OFD's structure, pages and seals, a PDF's signatures, the virus scan. Computed once per
document at staging (packager/stage.py `_inspect` calls `inspect_content`), kept on the
StagedDocument, written to 元数据 and read again by the package check through PackageUnderCheck,
which computes it itself only for a stored package.

`ContentOptions` is what the configuration says about it (the scanner, the trust roots, which
signatures are required, which check items are required); `content_options(settings)` builds it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from packager.containers import KINGSOFT_NAMES
from packager.convert import ConverterOptions
from packager.format_id import PronomMatch, identify_pronom, recorded_puid
from packager.ofd import OFD_FORMAT_NAME, OfdInspection, OfdOptions, inspect_ofd, ofd_options
from packager.signatures import PdfSignatureInspection, TrustRoots, inspect_pdf_signatures, load_trust_roots
from packager.virus import VirusResult, VirusScanner
from schemas.config import Settings, SignatureRule
from schemas.findings import Finding, Severity
from schemas.format_policy import FormatsConfig
from schemas.pickling import by_fields
from schemas.signature_info import SignatureRecord, SignatureState

# Every DA/T 70 item the check runs (schemas/codes/dat70.yaml); GD-4-1 is required only with a scanner.
ALL_ITEMS: tuple[str, ...] = (
    "GD-1-1", "GD-1-2", "GD-1-3", "GD-1-4", "GD-1-5", "GD-1-6", "GD-2-1", "GD-2-2", "GD-2-3", "GD-2-4",
    "GD-2-5", "GD-2-6", "GD-3-1", "GD-3-2", "GD-3-3", "GD-4-1", "GD-4-2", "GD-4-3",
)
DEFAULT_REQUIRED = frozenset(ALL_ITEMS) - {"GD-4-1"}


@by_fields
@dataclass(frozen=True, slots=True)
class ContentOptions:
    virus: VirusScanner | None = None
    trust_roots: TrustRoots | None = None
    signature_rules: tuple[SignatureRule, ...] = ()
    accept_unverified: bool = True
    required_items: frozenset[str] = DEFAULT_REQUIRED
    ofd: OfdOptions = field(default_factory=OfdOptions)
    # the format policy (keep / normalise / refuse) and the converter; None: every format is
    # staged as it is and GD-3-2 judges it (library callers, the package tests)
    policy: FormatsConfig | None = None
    converter: ConverterOptions = field(default_factory=ConverterOptions)


def content_options(settings: Settings | None) -> ContentOptions:
    if settings is None:
        return ContentOptions()
    scan = settings.virus_scan
    virus = None
    if scan is not None:
        virus = VirusScanner(
            clamd=scan.clamd_socket if not scan.clamd_socket or scan.clamd_socket.startswith("tcp://")
            else str(settings.resolve(scan.clamd_socket)),
            clamscan=scan.clamscan, database=str(settings.resolve(scan.database)) if scan.database else None,
            timeout_seconds=scan.timeout_seconds,
        )
    roots = load_trust_roots(tuple(str(settings.resolve(p)) for p in settings.signatures.trust_roots))
    if settings.required_checks is not None:
        required = frozenset(settings.required_checks)
    else:
        required = DEFAULT_REQUIRED | ({"GD-4-1"} if virus else set())
    formats: FormatsConfig | None = getattr(settings, "formats", None)  # absent from a caller's own stand-in
    converter = ConverterOptions()
    if formats is not None:
        conv = formats.converter
        converter = ConverterOptions(program=conv.program, timeout_seconds=conv.timeout_seconds,
                                     max_parallel=conv.max_parallel, profiles=settings.resolve(conv.profiles))
    return ContentOptions(virus=virus, trust_roots=roots, signature_rules=tuple(settings.signatures.required),
                          accept_unverified=settings.signatures.accept_unverified, required_items=required,
                          ofd=ofd_options(settings), policy=formats, converter=converter)


@by_fields
@dataclass(frozen=True, slots=True)
class ContentInspection:
    """One document's content inspection. `signatures` is None when the format carries none that
    guidang reads (neither PDF nor OFD); an empty tuple means "looked, none there"."""

    pronom: PronomMatch | None = None
    ofd: OfdInspection | None = None
    pdf_signatures: PdfSignatureInspection | None = None
    virus: VirusResult | None = None

    @property
    def signatures(self) -> tuple[SignatureRecord, ...] | None:
        if self.ofd is not None:
            return self.ofd.signatures
        if self.pdf_signatures is not None:
            return self.pdf_signatures.signatures
        return None

    @property
    def format_profile(self) -> str | None:
        return self.ofd.doc_type if self.ofd is not None and not self.ofd.problems else None

    def warnings(self, rel: str) -> tuple[Finding, ...]:
        """What readers tolerate (an OFD font not embedded, an unused resource file missing), for 元数据."""
        return tuple(Finding(w.code, rel, w.message, Severity.WARNING, {"count": w.count})
                     for w in (self.ofd.warnings if self.ofd is not None else ()))

    def format_name(self, short: str) -> str | None:
        if short == "OFD":
            return OFD_FORMAT_NAME
        if short in KINGSOFT_NAMES:
            return KINGSOFT_NAMES[short]
        return self.pronom.name if self.pronom and self.puid(short) else None

    def puid(self, short: str) -> str | None:
        return recorded_puid(short, self.pronom)

    def format_version(self, short: str) -> str | None:
        if short == "OFD":
            return self.ofd.version if self.ofd else None
        return self.pronom.version if self.pronom and self.puid(short) else None


def inspect_content(path: Path, rel: str, where: str, format_name: str, pdf_readable: bool,
                    options: ContentOptions, findings: list[Finding],
                    pronom: PronomMatch | None = None, *,
                    pdf_signed: bool = True) -> tuple[ContentInspection, int | None, bool]:
    """Inspect a staged document; append quarantine findings. Returns the inspection, the page
    count it found (OFD) and whether the document is fit to keep. `pdf_signed` False: pypdf's walk
    met no signature field or value, so pyHanko is not asked (its answer would be "none")."""
    pronom = pronom if pronom is not None else identify_pronom(path)
    ofd = sigs = None
    keep = True
    pages = None
    if format_name == "OFD":
        ofd = inspect_ofd(path, options.ofd)
        pages = ofd.pages
        for problem in ofd.problems:
            findings.append(Finding("Q-OFD-INVALID", where, problem, details={"path": rel}))
            keep = False
        if not ofd.problems and not ofd.pages:
            findings.append(Finding("Q-OFD-INVALID", where, "OFD has no pages", details={"path": rel}))
            keep = False
    elif format_name == "PDF" and pdf_readable:
        sigs = inspect_pdf_signatures(path, options.trust_roots) if pdf_signed else PdfSignatureInspection()
    inspection = ContentInspection(pronom=pronom, ofd=ofd, pdf_signatures=sigs)
    for record in inspection.signatures or ():
        if record.state == SignatureState.INVALID:
            findings.append(Finding("Q-SIGNATURE-INVALID", where, record.note or "signature invalid",
                                    details={"path": rel, "kind": record.kind}))
            keep = False
    if options.virus is not None:
        result = options.virus.scan(path)
        inspection = ContentInspection(pronom=pronom, ofd=ofd, pdf_signatures=sigs, virus=result)
        if result.infected:
            findings.append(Finding("Q-VIRUS", where, f"ClamAV found {result.infected}",
                                    details={"path": rel, "signature": result.infected}))
            keep = False
    return inspection, pages, keep


@dataclass(frozen=True, slots=True)
class SignatureDemand:
    """Which of a matter's documents must be signed, by the configured rules."""

    each: set[str] = field(default_factory=set)  # groups where every document must be signed
    any: set[str] = field(default_factory=set)  # groups where at least one must be


def signature_demand(rules: tuple[SignatureRule, ...], service_code: str | None,
                     matter_type: str | None) -> SignatureDemand:
    demand = SignatureDemand()
    for rule in rules:
        if not any(fnmatch.fnmatchcase(service_code or "", p) for p in rule.service_codes):
            continue
        if rule.matter_types and (matter_type or "") not in rule.matter_types:
            continue
        for g in rule.groups:
            (demand.each if rule.each else demand.any).add(f"{g}材料")
    return demand
