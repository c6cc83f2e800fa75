"""The 四性检测 items that read whole files: fixity against the manifests and the source
(GD-1-1, GD-1-2), format and PDF/OFD structure (GD-3-2, GD-3-3) and active content (GD-4-3);
signatures and the virus scan are in packager/content_items.py. They run last, after the cheap
structural items of packager/checks.py, and `level="quick"` skips them.
"""

from __future__ import annotations

from collections.abc import Mapping

from packager.check_context import PackageUnderCheck, item_result, no_metadata, skipped_at_quick
from packager.check_report import CheckItem, Status
from packager.content_items import ofd_findings, ofd_paths
from schemas.findings import Finding, Severity
from schemas.layout import (
    MANIFEST_SHA256,
    MANIFEST_SM3,
)


def gd_3_2(pkg: PackageUnderCheck) -> CheckItem:
    """Every document in a general-purpose format, or an original kept beside its rendition
    (转换件) in one: the 格式转换 entry of a rendition names its 源文件, which must be a document
    of the package."""
    if pkg.metadata is None:
        return no_metadata("GD-3-2")
    findings = []
    rendered: set[str] = set()
    for d in pkg.metadata.documents:
        if d.rendition_of is None or not d.path or d.path not in pkg.files:
            continue
        if d.rendition_of not in pkg.files or d.rendition_of == d.path:
            findings.append(Finding("GD-3-2", d.path, f"格式转换 names 源文件 {d.rendition_of}, which is not "
                                    "another document of the package"))
        elif pkg.format(d.path, d.media_type).general:
            rendered.add(d.rendition_of)
    originals = 0
    for d in pkg.metadata.documents:
        if d.path and d.path in pkg.files:
            fmt = pkg.format(d.path, d.media_type)
            if fmt.general:
                continue
            if d.path in rendered:
                originals += 1
            else:
                findings.append(Finding("GD-3-2", d.path, f"format {fmt.name} ({fmt.media_type}) is not a "
                                        "general-purpose archival format and has no rendition in one"))
    kept = f"; {originals} original(s) kept beside their renditions" if originals else ""
    return item_result("GD-3-2", findings, "all documents in general-purpose formats" + kept)


def gd_1_2(pkg: PackageUnderCheck) -> CheckItem:
    findings = list(pkg.manifest_findings)
    expected = pkg.expected_paths()
    for name, entries in sorted(pkg.manifests.items()):
        if expected is not None:
            findings += [Finding("GD-1-2", f"{name}", f"{p} is not listed") for p in sorted(expected - set(entries))]
            findings += [Finding("GD-1-2", f"{name}", f"{p} is listed but is not a document of the package")
                         for p in sorted(set(entries) - expected)]
        for rel in sorted(entries):
            if rel not in pkg.files:
                findings.append(Finding("GD-1-2", name, f"{rel} is listed but missing"))
    if pkg.level == "quick":
        if findings:
            return CheckItem("GD-1-2", Status.FAIL, "manifest listing wrong (digests not verified at quick level)",
                             findings)
        return skipped_at_quick("GD-1-2", "digest verification (the listing is complete)")
    for name, attr in ((MANIFEST_SM3, "sm3"), (MANIFEST_SHA256, "sha256")):
        for rel, digest in sorted(pkg.manifests.get(name, {}).items()):
            if rel in pkg.files:
                found = getattr(pkg.digests(rel), attr)
                if found != digest:
                    findings.append(Finding("GD-1-2", rel, f"{name}: expected {digest}, found {found}",
                                            details={"algorithm": attr, "expected": digest, "found": found}))
    listed = len(pkg.manifests.get(MANIFEST_SHA256, {}))
    return item_result("GD-1-2", findings, f"{listed} file(s) match both manifests")


def gd_1_1(pkg: PackageUnderCheck, source_digests: Mapping[str, str] | None) -> CheckItem:
    if pkg.level == "quick":
        return skipped_at_quick("GD-1-1", "digest verification")
    md = pkg.metadata
    if md is None:
        return no_metadata("GD-1-1")
    findings = []
    recorded = {d.path: d for d in md.documents if d.path}
    for rel in sorted(set(source_digests or ()) - set(recorded)):
        findings.append(Finding("GD-1-1", rel, "the source has this document; the package does not record it"))
    for rel, d in sorted(recorded.items()):
        if rel not in pkg.files:
            continue  # GD-2-5 reports it
        got = pkg.digests(rel)
        if source_digests is not None and rel in source_digests:
            algorithm, _, expected = source_digests[rel].rpartition(":")
            algorithm = (algorithm or "sha256").lower().replace("-", "")
            checks = [("sm3" if algorithm == "sm3" else "sha256", expected.lower())]
        else:
            checks = [("sm3", d.sm3 or ""), ("sha256", d.sha256 or "")]
        for attr, expected in checks:
            found = getattr(got, attr)
            if found != expected:
                findings.append(Finding("GD-1-1", rel, f"{attr.upper()} expected {expected}, found {found}",
                                        details={"algorithm": attr, "expected": expected, "found": found}))
    against = "the source digests" if source_digests is not None else "the digests recorded in 元数据.xml"
    return item_result("GD-1-1", findings, f"{len(recorded)} document(s) match {against}")


def _pdf_paths(pkg: PackageUnderCheck) -> list[str]:
    if pkg.metadata is None:
        return []
    return [d.path for d in pkg.metadata.documents
            if d.path and d.path in pkg.files and pkg.is_pdf(d.path, d.format, d.media_type)]


def gd_3_3(pkg: PackageUnderCheck) -> CheckItem:
    if pkg.level == "quick":
        return skipped_at_quick("GD-3-3", "PDF and OFD parsing")
    if pkg.metadata is None:
        return no_metadata("GD-3-3")
    pdfs = _pdf_paths(pkg)
    findings = []
    for rel in pdfs:
        info = pkg.pdf(rel)
        if info.encrypted:
            findings.append(Finding("GD-3-3", rel, info.encryption_message))
        elif info.error:
            findings.append(Finding("GD-3-3", rel, info.error))
        elif not info.pages:
            findings.append(Finding("GD-3-3", rel, "PDF has no pages"))
    ofds = ofd_paths(pkg)
    findings += ofd_findings(pkg)
    others = len(pkg.metadata.documents) - len(pdfs) - len(ofds)
    note = f"{len(pdfs)} PDF(s) open with their page trees"
    if ofds:
        note += f"; {len(ofds)} OFD(s) resolve to their pages and fonts"
    if others:
        note += f"; {others} other document(s) not parsed"
    warnings = [f for f in findings if f.severity == Severity.WARNING]
    if warnings and len(warnings) == len(findings):  # readers tolerate these: reported, the item passes
        return CheckItem("GD-3-3", Status.PASS, f"{note}; {len(warnings)} warning(s)", warnings)
    return item_result("GD-3-3", findings, note, applicable=bool(pdfs or ofds))


def gd_4_3(pkg: PackageUnderCheck) -> CheckItem:
    if pkg.level == "quick":
        return skipped_at_quick("GD-4-3", "PDF active-content scan")
    if pkg.metadata is None:
        return no_metadata("GD-4-3")
    pdfs = _pdf_paths(pkg)
    findings = [
        Finding("GD-4-3", rel, "active content: " + "; ".join(pkg.pdf(rel).active_content))
        for rel in pdfs
        if pkg.pdf(rel).active_content
    ]
    return item_result("GD-4-3", findings, f"no active content in {len(pdfs)} PDF(s)", applicable=bool(pdfs))
