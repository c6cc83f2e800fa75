"""四性检测 of one package folder (归档检测 when packaging, 接收检测 when re-checking a stored one).

Items are DA/T 70 归档-stage codes (schemas/codes/dat70.yaml says what each one means). They run
cheapest first, as bagit validates: structure and metadata, counts and sizes, completeness, then
fixity (every file hashed once, SM3 and SHA-256 together) and the PDF parse, and the virus scan
last. `level="quick"` stops before anything that reads whole files. Problems are collected per
item, never raised: the caller decides what a failed item means (finalize_package quarantines).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from packager.formats import HEAD_SIZE, FormatInfo, identify, is_pdf_claimed
from packager.pdf import PdfInspection, inspect_pdf
from retention.archival_code import DEFAULT_TEMPLATE, ArchivalCodeError, parse_archival_code
from schemas.digest import Digests, digest_file
from schemas.findings import Finding, GuidangError, code_text
from schemas.layout import (
    CHECK_REPORT_FILE,
    COMPLETION_MARKER,
    GROUP_FOLDERS,
    MANIFEST_SHA256,
    MANIFEST_SM3,
    METADATA_FILE,
    is_dangerous_path,
)
from schemas.metadata import MetadataView, parse_xml, read_metadata, validate_metadata, validate_xml
from schemas.model import DocumentGroup

CHECK_REPORT_XSD = "check_report.xsd"
CHECK_REPORT_VERSION = "1.0"
REQUIRED_STEPS: tuple[str, ...] = ("受理", "决定")  # 过程信息完整性 (GD-2-4)
DIGEST_ALGORITHMS: tuple[str, ...] = ("SM3", "SHA-256")
CLAMAV_TIMEOUT_SECONDS = 1800

Level = Literal["quick", "full"]

_PROPERTIES = {"1": "真实性", "2": "完整性", "3": "可用性", "4": "安全性"}
_RESULT_TEXT = {"pass": "通过", "fail": "不通过", "not_applicable": "不适用", "not_performed": "未检测"}
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    NOT_PERFORMED = "not_performed"


def _code_key(code: str) -> tuple[int, ...]:
    return tuple(int(p) for p in code.split("-")[1:])


@dataclass(slots=True)
class CheckItem:
    """One DA/T 70 item's result. `warning` marks a failed item downgraded by configuration."""

    code: str
    status: Status
    detail: str = ""
    findings: list[Finding] = field(default_factory=list)
    warning: bool = False

    @property
    def name(self) -> str:
        return code_text(self.code)

    @property
    def property_name(self) -> str:
        return _PROPERTIES[self.code.split("-")[1]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "name_en": code_text(self.code, "en"),
            "property": self.property_name,
            "status": str(self.status),
            "warning": self.warning,
            "detail": self.detail,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(slots=True)
class CheckReport:
    items: list[CheckItem]
    level: Level = "full"
    archival_code: str | None = None
    checked_at: datetime | None = None

    @property
    def failed_items(self) -> list[CheckItem]:
        """Failed items that count (not downgraded to warnings)."""
        return [i for i in self.items if i.status == Status.FAIL and not i.warning]

    @property
    def warning_items(self) -> list[CheckItem]:
        return [i for i in self.items if i.status == Status.FAIL and i.warning]

    @property
    def passed(self) -> bool:
        return not self.failed_items

    @property
    def findings(self) -> list[Finding]:
        """The findings of every failed item, downgraded ones included."""
        return [f for i in self.items if i.status == Status.FAIL for f in i.findings]

    def item(self, code: str) -> CheckItem:
        for i in self.items:
            if i.code == code:
                return i
        raise KeyError(code)

    def to_dict(self) -> dict[str, Any]:
        return {
            "archival_code": self.archival_code,
            "level": self.level,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "passed": self.passed,
            "failed_items": [i.code for i in self.failed_items],
            "warning_items": [i.code for i in self.warning_items],
            "items": [i.to_dict() for i in self.items],
        }

    def to_xml(self) -> bytes:
        """检测报告.xml, valid against schemas/check_report.xsd; deterministic for equal reports."""
        root = etree.Element("检测报告", {
            "版本": CHECK_REPORT_VERSION, "检测级别": self.level, "结论": "通过" if self.passed else "不通过",
        })
        if self.archival_code:
            etree.SubElement(root, "档号").text = self.archival_code
        if self.checked_at is not None:
            etree.SubElement(root, "检测时间").text = self.checked_at.isoformat()
        for algorithm in DIGEST_ALGORITHMS:
            etree.SubElement(root, "摘要算法").text = algorithm
        for item in self.items:
            attrs = {"代码": item.code, "性质": item.property_name, "状态": str(item.status)}
            if item.warning:
                attrs["降为警告"] = "true"
            el = etree.SubElement(root, "检测项目", attrs)
            etree.SubElement(el, "名称").text = item.name
            etree.SubElement(el, "结果").text = _RESULT_TEXT[str(item.status)]
            if item.detail:
                etree.SubElement(el, "说明").text = item.detail
            for f in item.findings:
                etree.SubElement(el, "问题", {"位置": f.where}).text = f.message
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def validate_check_report(source: bytes | Path) -> list[Finding]:
    return validate_xml(source, CHECK_REPORT_XSD, code="CHECK-REPORT-INVALID", where=CHECK_REPORT_FILE)


# -- the context shared by the items ---------------------------------------------------------------

@dataclass
class _Package:
    folder: Path
    level: Level
    files: dict[str, int] = field(default_factory=dict)  # relative path -> size, regular files only
    links: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    metadata: MetadataView | None = None
    metadata_error: str | None = None
    manifests: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> {path: digest}
    manifest_findings: list[Finding] = field(default_factory=list)
    _digests: dict[str, Digests] = field(default_factory=dict)
    _formats: dict[str, FormatInfo] = field(default_factory=dict)
    _pdfs: dict[str, PdfInspection] = field(default_factory=dict)

    def digests(self, rel: str) -> Digests:
        if rel not in self._digests:
            self._digests[rel] = digest_file(self.folder / rel)
        return self._digests[rel]

    def format(self, rel: str, declared: str | None) -> FormatInfo:
        if rel not in self._formats:
            with (self.folder / rel).open("rb") as fh:
                self._formats[rel] = identify(fh.read(HEAD_SIZE), rel, declared)
        return self._formats[rel]

    def pdf(self, rel: str) -> PdfInspection:
        if rel not in self._pdfs:
            self._pdfs[rel] = inspect_pdf(self.folder / rel)
        return self._pdfs[rel]

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


def _inventory(pkg: _Package) -> None:
    for dirpath, dirnames, filenames in os.walk(pkg.folder, followlinks=False):
        base = Path(dirpath)
        for name in sorted(dirnames):
            rel = (base / name).relative_to(pkg.folder).as_posix()
            if (base / name).is_symlink():
                pkg.links.append(rel)
            else:
                pkg.folders.append(rel)
        for name in filenames:
            p = base / name
            rel = p.relative_to(pkg.folder).as_posix()
            if p.is_symlink():
                pkg.links.append(rel)
            elif p.is_file():
                pkg.files[rel] = p.stat().st_size
            else:
                pkg.links.append(rel)  # sockets, fifos: not something a package may hold


def _read_manifest(pkg: _Package, name: str) -> None:
    path = pkg.folder / name
    if not path.is_file():
        pkg.manifest_findings.append(Finding("GD-1-2", name, "manifest is missing"))
        return
    entries: dict[str, str] = {}
    with path.open("r", encoding="utf-8", errors="replace", newline="\n") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            m = _MANIFEST_LINE.fullmatch(line)
            if m is None:
                pkg.manifest_findings.append(Finding("GD-1-2", f"{name}:{lineno}", f"malformed line {line[:120]!r}"))
                continue
            digest, rel = m.groups()
            if is_dangerous_path(rel):
                pkg.manifest_findings.append(Finding("GD-1-2", f"{name}:{lineno}", f"dangerous path {rel!r}"))
                continue
            if rel in entries:
                pkg.manifest_findings.append(Finding("GD-1-2", f"{name}:{lineno}", f"{rel} is listed twice"))
            entries[rel] = digest
    pkg.manifests[name] = entries


def _item(code: str, findings: list[Finding], ok: str, *, applicable: bool = True) -> CheckItem:
    if not applicable:
        return CheckItem(code, Status.NOT_APPLICABLE, ok)
    if findings:
        return CheckItem(code, Status.FAIL, f"{len(findings)} problem(s)", findings)
    return CheckItem(code, Status.PASS, ok)


def _no_metadata(code: str) -> CheckItem:
    return CheckItem(code, Status.NOT_PERFORMED, "元数据.xml is missing or unreadable (see GD-3-1)")


def _quick(code: str, what: str) -> CheckItem:
    return CheckItem(code, Status.NOT_PERFORMED, f"quick level: {what} not performed")


# -- the items ---------------------------------------------------------------------------------

def _gd_3_1(pkg: _Package) -> CheckItem:
    path = pkg.folder / METADATA_FILE
    if not path.is_file():
        return CheckItem("GD-3-1", Status.FAIL, "元数据.xml is missing", [Finding("GD-3-1", METADATA_FILE, "missing")])
    try:
        tree = parse_xml(path)
    except etree.XMLSyntaxError as exc:
        return CheckItem("GD-3-1", Status.FAIL, "not well-formed",
                         [Finding("GD-3-1", METADATA_FILE, f"not well-formed XML: {exc}")])
    pkg.metadata = read_metadata(tree)
    return _item("GD-3-1", validate_metadata(tree, code="GD-3-1"), "well-formed and valid against metadata.xsd")


def _gd_4_2(pkg: _Package) -> CheckItem:
    findings: list[Finding] = []
    listed: set[str] = set()
    for entries in pkg.manifests.values():
        listed |= set(entries)
    if not pkg.manifests:
        listed = pkg.expected_paths() or {METADATA_FILE}
    allowed = listed | {MANIFEST_SM3, MANIFEST_SHA256, CHECK_REPORT_FILE, COMPLETION_MARKER}
    for rel in sorted(pkg.files):
        if rel not in allowed:
            findings.append(Finding("GD-4-2", rel, "file is not listed in the manifests"))
    for rel in sorted(pkg.links):
        findings.append(Finding("GD-4-2", rel, "symbolic link or special file"))
    for rel in sorted(pkg.folders):
        if rel not in GROUP_FOLDERS:
            findings.append(Finding("GD-4-2", rel + "/", "folder other than 申报材料/过程材料/结果材料"))
    return _item("GD-4-2", findings, f"{len(pkg.files)} file(s), none extraneous")


def _gd_2_1(pkg: _Package) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return _no_metadata("GD-2-1")
    on_disk = len(pkg.content_files())
    findings = []
    if md.document_count != len(md.documents):
        findings.append(Finding("GD-2-1", "元数据.xml/形式特征/件数",
                                f"件数 says {md.document_count}, 文件信息 lists {len(md.documents)}"))
    if on_disk != len(md.documents):
        findings.append(Finding("GD-2-1", "package",
                                f"文件信息 lists {len(md.documents)}, the material folders hold {on_disk}"))
    return _item("GD-2-1", findings, f"{on_disk} document(s)")


def _gd_2_2(pkg: _Package) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return _no_metadata("GD-2-2")
    recorded = sum(d.size or 0 for d in md.documents)
    on_disk = sum(pkg.content_files().values())
    findings = []
    if md.bytes_total != recorded:
        findings.append(Finding("GD-2-2", "元数据.xml/形式特征/总字节数",
                                f"总字节数 says {md.bytes_total}, the 文件 entries add up to {recorded}"))
    if on_disk != recorded:
        findings.append(Finding("GD-2-2", "package",
                                f"metadata records {recorded} bytes, the material folders hold {on_disk}"))
    return _item("GD-2-2", findings, f"{on_disk} bytes")


def _gd_2_3(pkg: _Package) -> CheckItem:
    if pkg.metadata is None:
        return _no_metadata("GD-2-3")
    missing = pkg.metadata.missing_mandatory()
    findings = [Finding("GD-2-3", f"元数据.xml/{m}", "mandatory element missing or empty") for m in missing]
    return _item("GD-2-3", findings, "all mandatory elements present")


def _gd_2_4(pkg: _Package) -> CheckItem:
    if pkg.metadata is None:
        return _no_metadata("GD-2-4")
    names = pkg.metadata.step_names
    findings = [
        Finding("GD-2-4", "元数据.xml/业务信息/办理过程", f"no {step} step (steps: {', '.join(names) or 'none'})")
        for step in REQUIRED_STEPS
        if not any(step in n for n in names)
    ]
    return _item("GD-2-4", findings, f"steps: {', '.join(names)}")


def _gd_2_5(pkg: _Package) -> CheckItem:
    if pkg.metadata is None:
        return _no_metadata("GD-2-5")
    findings = []
    for d in pkg.metadata.documents:
        if not d.path:
            findings.append(Finding("GD-2-5", f"元数据.xml/文件信息/文件[{d.index}]", "no 相对路径"))
        elif d.path not in pkg.files:
            findings.append(Finding("GD-2-5", d.path, "recorded in 元数据.xml but not in the package"))
        elif pkg.files[d.path] == 0:
            findings.append(Finding("GD-2-5", d.path, "file is empty"))
    return _item("GD-2-5", findings, f"{len(pkg.metadata.documents)} document(s) present")


def _gd_2_6(pkg: _Package) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return _no_metadata("GD-2-6")
    findings = []
    if md.scope != "归档":
        findings.append(Finding("GD-2-6", "元数据.xml/保管信息/归档范围", f"归档范围 is {md.scope!r}, not 归档"))
    if md.keep_period != md.period:
        findings.append(Finding("GD-2-6", "元数据.xml/保管信息/保管期限",
                                f"保管期限 {md.keep_period!r} differs from the 档号's {md.period!r}"))
    return _item("GD-2-6", findings, f"归档, {md.keep_period}")


def _gd_1_3(pkg: _Package) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return _no_metadata("GD-1-3")
    findings = []
    for d in md.documents:
        if not d.path or d.path not in pkg.files:
            continue  # GD-2-5 reports it
        try:
            expected_path = f"{DocumentGroup.parse(d.group or '').value}/{d.file_name}"
        except ValueError:
            expected_path = None
        if d.path != expected_path:
            findings.append(Finding("GD-1-3", d.path, f"path does not equal 材料类别/文件名 ({d.group}/{d.file_name})"))
        if d.size != pkg.files[d.path]:
            findings.append(Finding("GD-1-3", d.path, f"大小 says {d.size}, the file has {pkg.files[d.path]} bytes",
                                    details={"expected": d.size, "found": pkg.files[d.path]}))
        fmt = pkg.format(d.path, d.media_type)
        if d.format != fmt.name:
            findings.append(Finding("GD-1-3", d.path, f"格式 says {d.format}, the content is {fmt.name}"))
        if pkg.level == "full" and pkg.is_pdf(d.path, d.format, d.media_type):
            info = pkg.pdf(d.path)
            if info.pages is not None and d.pages != info.pages:
                findings.append(Finding("GD-1-3", d.path, f"页数 says {d.pages}, the PDF has {info.pages} page(s)"))
    pages = sum(d.pages or 0 for d in md.documents)
    if md.pages_total != pages:
        findings.append(Finding("GD-1-3", "元数据.xml/形式特征/页数",
                                f"页数 says {md.pages_total}, the 文件 entries add up to {pages}"))
    what = "size, format and pages" if pkg.level == "full" else "size and format (pages at full level)"
    return _item("GD-1-3", findings, f"{what} agree for {len(md.documents)} document(s)")


def _gd_1_4(pkg: _Package, template: str) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return _no_metadata("GD-1-4")
    code = md.archival_code or ""
    where = "元数据.xml/档号/完整档号"
    try:
        parts = parse_archival_code(code, template)
    except ArchivalCodeError as exc:
        return _item("GD-1-4", [Finding("GD-1-4", where, str(exc))], "")
    expected = {"全宗号": md.fonds, "门类代码": md.category, "年度": md.year, "保管期限": md.period,
                "机构问题代码": md.org or "", "件号": str(md.item_number)}
    got = {"全宗号": parts.fonds, "门类代码": parts.category, "年度": f"{parts.year:04d}",
           "保管期限": parts.period.value, "机构问题代码": parts.org, "件号": str(parts.item)}
    findings = [
        Finding("GD-1-4", where, f"{name} {got[name]!r} in the 档号 differs from 档号/{name} {value!r}")
        for name, value in expected.items()
        if got[name] != value
    ]
    return _item("GD-1-4", findings, f"{code} well-formed")


def _gd_1_5(pkg: _Package) -> CheckItem:
    if pkg.metadata is None:
        return _no_metadata("GD-1-5")
    findings = []
    seen: set[str] = set()
    for d in pkg.metadata.documents:
        if d.path and d.path in seen:
            findings.append(Finding("GD-1-5", d.path, f"listed twice in 文件信息 (again as 文件 {d.index})"))
        if d.path:
            seen.add(d.path)
    numbers = [f.get("序号") for f in pkg.metadata.tree.getroot().findall("文件信息/文件")]
    for n in sorted({n for n in numbers if numbers.count(n) > 1}, key=str):
        findings.append(Finding("GD-1-5", "元数据.xml/文件信息", f"序号 {n} is used more than once"))
    return _item("GD-1-5", findings, "no duplicated entries")


def _gd_3_2(pkg: _Package) -> CheckItem:
    if pkg.metadata is None:
        return _no_metadata("GD-3-2")
    findings = []
    for d in pkg.metadata.documents:
        if d.path and d.path in pkg.files:
            fmt = pkg.format(d.path, d.media_type)
            if not fmt.general:
                findings.append(Finding("GD-3-2", d.path, f"format {fmt.name} ({fmt.media_type}) is not a "
                                        "general-purpose archival format"))
    return _item("GD-3-2", findings, "all documents in general-purpose formats")


def _gd_1_2(pkg: _Package) -> CheckItem:
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
        return _quick("GD-1-2", "digest verification (the listing is complete)")
    for name, attr in ((MANIFEST_SM3, "sm3"), (MANIFEST_SHA256, "sha256")):
        for rel, digest in sorted(pkg.manifests.get(name, {}).items()):
            if rel in pkg.files:
                found = getattr(pkg.digests(rel), attr)
                if found != digest:
                    findings.append(Finding("GD-1-2", rel, f"{name}: expected {digest}, found {found}",
                                            details={"algorithm": attr, "expected": digest, "found": found}))
    return _item("GD-1-2", findings, f"{len(pkg.manifests.get(MANIFEST_SHA256, {}))} file(s) match both manifests")


def _gd_1_1(pkg: _Package, source_digests: Mapping[str, str] | None) -> CheckItem:
    if pkg.level == "quick":
        return _quick("GD-1-1", "digest verification")
    md = pkg.metadata
    if md is None:
        return _no_metadata("GD-1-1")
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
    return _item("GD-1-1", findings, f"{len(recorded)} document(s) match {against}")


def _pdf_paths(pkg: _Package) -> list[str]:
    if pkg.metadata is None:
        return []
    return [d.path for d in pkg.metadata.documents
            if d.path and d.path in pkg.files and pkg.is_pdf(d.path, d.format, d.media_type)]


def _gd_3_3(pkg: _Package) -> CheckItem:
    if pkg.level == "quick":
        return _quick("GD-3-3", "PDF parsing")
    if pkg.metadata is None:
        return _no_metadata("GD-3-3")
    pdfs = _pdf_paths(pkg)
    findings = []
    for rel in pdfs:
        info = pkg.pdf(rel)
        if info.encrypted:
            findings.append(Finding("GD-3-3", rel, "PDF is encrypted"))
        elif info.error:
            findings.append(Finding("GD-3-3", rel, info.error))
        elif not info.pages:
            findings.append(Finding("GD-3-3", rel, "PDF has no pages"))
    others = len(pkg.metadata.documents) - len(pdfs)
    note = f"{len(pdfs)} PDF(s) open with their page trees"
    if others:
        note += f"; {others} other document(s) not parsed"
    return _item("GD-3-3", findings, note, applicable=bool(pdfs))


def _gd_4_3(pkg: _Package) -> CheckItem:
    if pkg.level == "quick":
        return _quick("GD-4-3", "PDF active-content scan")
    if pkg.metadata is None:
        return _no_metadata("GD-4-3")
    pdfs = _pdf_paths(pkg)
    findings = [
        Finding("GD-4-3", rel, "active content: " + "; ".join(pkg.pdf(rel).active_content))
        for rel in pdfs
        if pkg.pdf(rel).active_content
    ]
    return _item("GD-4-3", findings, f"no active content in {len(pdfs)} PDF(s)", applicable=bool(pdfs))


def _gd_4_1(pkg: _Package) -> CheckItem:
    if pkg.level == "quick":
        return _quick("GD-4-1", "virus scan")
    scanners = [s for s in ("clamdscan", "clamscan") if shutil.which(s)]
    if not scanners:
        return CheckItem("GD-4-1", Status.NOT_PERFORMED,
                         "ClamAV is not installed (neither clamdscan nor clamscan on PATH)")
    paths = [str(pkg.folder / rel) for rel in sorted(pkg.files)]
    errors = []
    for scanner in scanners:
        args = [scanner, "--no-summary"] + (["--fdpass"] if scanner == "clamdscan" else []) + ["--", *paths]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=CLAMAV_TIMEOUT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{scanner}: {exc}")
            continue
        if proc.returncode == 0:
            return CheckItem("GD-4-1", Status.PASS, f"{scanner}: {len(paths)} file(s) clean")
        if proc.returncode == 1:
            findings = []
            prefix = str(pkg.folder) + os.sep
            for line in proc.stdout.splitlines():
                if line.endswith(" FOUND"):
                    path, _, signature = line.rpartition(": ")
                    findings.append(Finding("GD-4-1", path.removeprefix(prefix), signature.removesuffix(" FOUND")))
            return CheckItem("GD-4-1", Status.FAIL, f"{scanner} found malware", findings
                             or [Finding("GD-4-1", "package", proc.stdout.strip()[:500])])
        errors.append(f"{scanner} exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:300]}")
    return CheckItem("GD-4-1", Status.NOT_PERFORMED, "scanner error: " + " | ".join(errors))


def check_package(
    folder: Path,
    *,
    level: Level = "full",
    source_digests: Mapping[str, str] | None = None,
    archival_code_template: str | None = None,
    warnings: Collection[str] = (),
    checked_at: datetime | None = None,
) -> CheckReport:
    """Run every DA/T 70 归档 item over a package folder and return the report.

    `source_digests` maps a document's relative path to the digest the source vouched for
    ("sha256:<hex>", "sm3:<hex>", or bare hex = SHA-256); without it GD-1-1 checks against the
    digests 元数据.xml recorded. `archival_code_template` is the fonds' template (DA/T 13 default).
    Items whose code is in `warnings` are reported but do not make the report fail.
    """
    if level not in ("quick", "full"):
        raise GuidangError(f"check level must be 'quick' or 'full', not {level!r}")
    if not folder.is_dir():
        raise GuidangError(f"package folder {folder} does not exist")
    pkg = _Package(folder=folder, level=level)
    _inventory(pkg)
    items = [_gd_3_1(pkg)]
    _read_manifest(pkg, MANIFEST_SM3)
    _read_manifest(pkg, MANIFEST_SHA256)
    items += [
        _gd_4_2(pkg), _gd_2_1(pkg), _gd_2_2(pkg), _gd_2_3(pkg), _gd_2_4(pkg), _gd_2_5(pkg), _gd_2_6(pkg),
        _gd_1_3(pkg), _gd_1_4(pkg, archival_code_template or DEFAULT_TEMPLATE), _gd_1_5(pkg),
        _gd_3_2(pkg), _gd_1_2(pkg), _gd_1_1(pkg, source_digests), _gd_3_3(pkg), _gd_4_3(pkg), _gd_4_1(pkg),
    ]
    for item in items:
        item.warning = item.status == Status.FAIL and item.code in warnings
    items.sort(key=lambda i: _code_key(i.code))
    return CheckReport(
        items=items,
        level=level,
        archival_code=pkg.metadata.archival_code if pkg.metadata else None,
        checked_at=checked_at,
    )
