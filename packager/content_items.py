"""The 四性检测 items about what the documents are and carry: electronic signatures (GD-1-6, 真实性),
the OFD part of readability (GD-3-3), the PRONOM and OFD parts of metadata agreement (GD-1-3) and
the virus scan (GD-4-1). Each reads the document's inspection through PackageUnderCheck, which
takes it from staging for a fresh package and computes it for a stored one.
"""

from __future__ import annotations

from packager.check_context import PackageUnderCheck, item_result, no_metadata, skipped_at_quick
from packager.check_report import CheckItem, Status
from packager.content import signature_demand
from packager.format_id import recorded_puid
from packager.signatures import signature_kinds
from schemas.findings import Finding, Severity
from schemas.metadata import MetadataDocument
from schemas.signature_info import SignatureRecord, SignatureState


def _format(pkg: PackageUnderCheck, d: MetadataDocument) -> str:
    return pkg.format(d.path or "", d.media_type).name


def ofd_paths(pkg: PackageUnderCheck) -> list[str]:
    if pkg.metadata is None:
        return []
    return [d.path for d in pkg.metadata.documents if d.path and d.path in pkg.files and _format(pkg, d) == "OFD"]


def ofd_findings(pkg: PackageUnderCheck) -> list[Finding]:
    """GD-3-3 for OFD: the container, OFD.xml, DocBody, Document.xml, pages and fonts; what readers
    tolerate comes as findings of severity warning, which do not fail the item."""
    findings = []
    for rel in ofd_paths(pkg):
        info = pkg.ofd(rel)
        findings += [Finding("GD-3-3", rel, p) for p in info.problems]
        findings += [Finding("GD-3-3", rel, w.message if w.count == 1 else f"{w.message} ({w.count} times)",
                             Severity.WARNING, {"code": w.code}) for w in info.warnings]
        if not info.problems and not info.pages:
            findings.append(Finding("GD-3-3", rel, "OFD has no pages"))
    return findings


def agreement_findings(pkg: PackageUnderCheck, d: MetadataDocument) -> list[Finding]:
    """GD-1-3 for what the content inspection recorded: the PRONOM identifier, an OFD's pages and profile."""
    rel = d.path or ""
    findings = []
    found = recorded_puid(_format(pkg, d), pkg.pronom(rel))
    if d.pronom_id != found:
        findings.append(Finding("GD-1-3", rel, f"PRONOM标识 says {d.pronom_id or 'none'}, the content is "
                                f"{found or 'not identified by PRONOM'}"))
    if pkg.level == "full" and _format(pkg, d) == "OFD":
        info = pkg.ofd(rel)
        if info.pages is not None and d.pages != info.pages:
            findings.append(Finding("GD-1-3", rel, f"页数 says {d.pages}, the OFD has {info.pages} page(s)"))
        profile = info.doc_type if not info.problems else None
        if profile is not None and d.format_profile != profile:
            findings.append(Finding("GD-1-3", rel, f"格式子类型 says {d.format_profile or 'nothing'}, the OFD's "
                                    f"DocType is {profile}"))
    return findings


def _signatures(pkg: PackageUnderCheck, d: MetadataDocument) -> tuple[tuple[SignatureRecord, ...], str | None]:
    """The document's signatures as found now, and why they could not be read (PDF only)."""
    rel, fmt = d.path or "", _format(pkg, d)
    if fmt == "OFD":
        return pkg.ofd(rel).signatures, None
    if fmt == "PDF" and pkg.pdf(rel).readable:
        info = pkg.pdf_signatures(rel)
        return info.signatures, info.error
    return (), None


def _states(records: tuple[SignatureRecord, ...]) -> list[str]:
    return [r.state.value for r in records]


def gd_1_6(pkg: PackageUnderCheck) -> CheckItem:
    """电子签名: no signature invalid, 签名信息 agrees with what the documents carry, and every
    signature the configuration requires for the matter's 事项 and the document's 材料类别 is there."""
    if pkg.level == "quick":
        return skipped_at_quick("GD-1-6", "signature validation")
    md = pkg.metadata
    if md is None:
        return no_metadata("GD-1-6")
    root = md.tree.getroot()
    kind = root.find("业务信息/事项类型")
    service_code = root.findtext("业务信息/事项编码")
    demand = signature_demand(pkg.options.signature_rules, service_code, kind.get("代码") if kind is not None else None)
    accepted = {SignatureState.VALID} | ({SignatureState.UNVERIFIED} if pkg.options.accept_unverified else set())
    findings: list[Finding] = []
    every: list[SignatureRecord] = []
    satisfied: set[str] = set()
    notes: list[str] = []
    for d in md.documents:
        if not d.path or d.path not in pkg.files:
            continue
        found, error = _signatures(pkg, d)
        every += found
        if error is not None:
            notes.append(f"{d.path}: {error}")
        for r in found:
            if r.state == SignatureState.INVALID:
                findings.append(Finding("GD-1-6", d.path, f"{r.kind} signature invalid: {r.note or ''}"))
        if _states(d.signatures) != _states(found):
            findings.append(Finding("GD-1-6", d.path, f"签名信息 records {_states(d.signatures) or 'no signature'}, "
                                    f"the document carries {_states(found) or 'none'}"))
        usable = [r for r in found if r.state in accepted]
        if usable and d.group:
            satisfied.add(d.group)
        if d.group in demand.each and not usable:
            why = "only signatures that are not accepted (存在未验证)" if found else "none"
            findings.append(Finding("GD-1-6", d.path, f"a signature is required for {d.group} of 事项 "
                                    f"{service_code}; the document carries {why}"
                                    + (f" ({error})" if error else "")))
    for group in sorted(demand.any - satisfied):
        findings.append(Finding("GD-1-6", group, f"at least one signed document is required in {group} of 事项 "
                                f"{service_code}; none is signed"))
    ok = signature_kinds(every) + (f"; required for {', '.join(sorted(demand.each | demand.any))}"
                                   if demand.each or demand.any else "")
    if notes:
        ok += "; " + "; ".join(notes)
    return item_result("GD-1-6", findings, ok, applicable=bool(every or demand.each or demand.any or findings))


def gd_4_1(pkg: PackageUnderCheck) -> CheckItem:
    """病毒检测 of every document with the configured ClamAV; a scanner that does not answer fails
    the item, and none configured leaves it 未检测."""
    if pkg.level == "quick":
        return skipped_at_quick("GD-4-1", "virus scan")
    scanner = pkg.options.virus
    if scanner is None:
        return CheckItem("GD-4-1", Status.NOT_PERFORMED, "no virus scanner configured (virus_scan in guidang.yaml)")
    findings = []
    rels = sorted(pkg.content_files())
    for rel in rels:
        result = pkg.virus(rel)
        if result is None:
            continue
        if result.infected:
            findings.append(Finding("GD-4-1", rel, f"ClamAV found {result.infected}",
                                    details={"signature": result.infected}))
        elif result.error:
            findings.append(Finding("GD-4-1", rel, f"not scanned: {result.error}"))
    if findings:
        broken = all(f.message.startswith("not scanned") for f in findings)
        return CheckItem("GD-4-1", Status.FAIL, "scanner unavailable" if broken else "malware found", findings)
    return CheckItem("GD-4-1", Status.PASS, f"{scanner.label}: {len(rels)} document(s) clean")
