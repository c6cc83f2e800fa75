"""四性检测 of one package folder (归档检测 when packaging, 接收检测 when re-checking a stored one).

Items are DA/T 70 归档-stage codes (schemas/codes/dat70.yaml says what each one means). They run
cheapest first, as bagit validates: structure and metadata, counts and sizes, completeness, then
fixity (every file hashed once, SM3 and SHA-256 together) and the PDF parse, and the virus scan
last. `level="quick"` stops before anything that reads whole files. Problems are collected per
item, never raised: the caller decides what a failed item means (finalize_package quarantines).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from lxml import etree

from packager.check_context import (
    KnownFacts,
    PackageUnderCheck,
    item_result,
    no_metadata,
    read_package_manifest,
    take_inventory,
)
from packager.check_report import CheckItem, CheckReport, Level, Status, code_key
from packager.content import ContentOptions
from packager.content_checks import gd_1_1, gd_1_2, gd_3_2, gd_3_3, gd_4_3
from packager.content_items import agreement_findings, gd_1_6, gd_4_1
from packager.pdf import PDF_PARSE_LIMIT
from retention.archival_code import DEFAULT_TEMPLATE, ArchivalCodeError, parse_archival_code
from schemas.findings import Finding, GuidangError
from schemas.layout import (
    CHECK_REPORT_FILE,
    COMPLETION_MARKER,
    GROUP_FOLDERS,
    MANIFEST_SHA256,
    MANIFEST_SM3,
    METADATA_FILE,
)
from schemas.metadata import read_metadata, validate_metadata
from schemas.model import DocumentGroup
from schemas.xmlio import parse_xml

REQUIRED_STEPS: tuple[str, ...] = ("受理", "决定")  # 过程信息完整性 (GD-2-4)


# -- the items ---------------------------------------------------------------------------------

def _gd_3_1(pkg: PackageUnderCheck, built: etree._ElementTree | None) -> CheckItem:
    path = pkg.folder / METADATA_FILE
    if built is not None and (METADATA_FILE in pkg.unwritten or path.is_file()):
        # the packager validated these very bytes as it built them
        pkg.metadata = read_metadata(built)
        return CheckItem("GD-3-1", Status.PASS, "well-formed and valid against metadata.xsd")
    if not path.is_file():
        return CheckItem("GD-3-1", Status.FAIL, "元数据.xml is missing", [Finding("GD-3-1", METADATA_FILE, "missing")])
    try:
        tree = parse_xml(path)
    except etree.XMLSyntaxError as exc:
        return CheckItem("GD-3-1", Status.FAIL, "not well-formed",
                         [Finding("GD-3-1", METADATA_FILE, f"not well-formed XML: {exc}")])
    pkg.metadata = read_metadata(tree)
    return item_result("GD-3-1", validate_metadata(tree, code="GD-3-1"), "well-formed and valid against metadata.xsd")


def _gd_4_2(pkg: PackageUnderCheck) -> CheckItem:
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
    return item_result("GD-4-2", findings, f"{len(pkg.files)} file(s), none extraneous")


def _gd_2_1(pkg: PackageUnderCheck) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return no_metadata("GD-2-1")
    on_disk = len(pkg.content_files())
    findings = []
    if md.document_count != len(md.documents):
        findings.append(Finding("GD-2-1", "元数据.xml/形式特征/件数",
                                f"件数 says {md.document_count}, 文件信息 lists {len(md.documents)}"))
    if on_disk != len(md.documents):
        findings.append(Finding("GD-2-1", "package",
                                f"文件信息 lists {len(md.documents)}, the material folders hold {on_disk}"))
    return item_result("GD-2-1", findings, f"{on_disk} document(s)")


def _gd_2_2(pkg: PackageUnderCheck) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return no_metadata("GD-2-2")
    recorded = sum(d.size or 0 for d in md.documents)
    on_disk = sum(pkg.content_files().values())
    findings = []
    if md.bytes_total != recorded:
        findings.append(Finding("GD-2-2", "元数据.xml/形式特征/总字节数",
                                f"总字节数 says {md.bytes_total}, the 文件 entries add up to {recorded}"))
    if on_disk != recorded:
        findings.append(Finding("GD-2-2", "package",
                                f"metadata records {recorded} bytes, the material folders hold {on_disk}"))
    return item_result("GD-2-2", findings, f"{on_disk} bytes")


def _gd_2_3(pkg: PackageUnderCheck) -> CheckItem:
    if pkg.metadata is None:
        return no_metadata("GD-2-3")
    missing = pkg.metadata.missing_mandatory()
    findings = [Finding("GD-2-3", f"元数据.xml/{m}", "mandatory element missing or empty") for m in missing]
    return item_result("GD-2-3", findings, "all mandatory elements present")


def _gd_2_4(pkg: PackageUnderCheck) -> CheckItem:
    if pkg.metadata is None:
        return no_metadata("GD-2-4")
    names = pkg.metadata.step_names
    findings = [
        Finding("GD-2-4", "元数据.xml/业务信息/办理过程", f"no {step} step (steps: {', '.join(names) or 'none'})")
        for step in REQUIRED_STEPS
        if not any(step in n for n in names)
    ]
    return item_result("GD-2-4", findings, f"steps: {', '.join(names)}")


def _gd_2_5(pkg: PackageUnderCheck) -> CheckItem:
    if pkg.metadata is None:
        return no_metadata("GD-2-5")
    findings = []
    for d in pkg.metadata.documents:
        if not d.path:
            findings.append(Finding("GD-2-5", f"元数据.xml/文件信息/文件[{d.index}]", "no 相对路径"))
        elif d.path not in pkg.files:
            findings.append(Finding("GD-2-5", d.path, "recorded in 元数据.xml but not in the package"))
        elif pkg.files[d.path] == 0:
            findings.append(Finding("GD-2-5", d.path, "file is empty"))
    return item_result("GD-2-5", findings, f"{len(pkg.metadata.documents)} document(s) present")


def _gd_2_6(pkg: PackageUnderCheck) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return no_metadata("GD-2-6")
    findings = []
    if md.scope != "归档":
        findings.append(Finding("GD-2-6", "元数据.xml/保管信息/归档范围", f"归档范围 is {md.scope!r}, not 归档"))
    if md.keep_period != md.period:
        findings.append(Finding("GD-2-6", "元数据.xml/保管信息/保管期限",
                                f"保管期限 {md.keep_period!r} differs from the 档号's {md.period!r}"))
    return item_result("GD-2-6", findings, f"归档, {md.keep_period}")


def _gd_1_3(pkg: PackageUnderCheck) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return no_metadata("GD-1-3")
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
        findings += agreement_findings(pkg, d)
    pages = sum(d.pages or 0 for d in md.documents)
    if md.pages_total != pages:
        findings.append(Finding("GD-1-3", "元数据.xml/形式特征/页数",
                                f"页数 says {md.pages_total}, the 文件 entries add up to {pages}"))
    what = "size, format and pages" if pkg.level == "full" else "size and format (pages at full level)"
    return item_result("GD-1-3", findings, f"{what} agree for {len(md.documents)} document(s)")


def _gd_1_4(pkg: PackageUnderCheck, template: str) -> CheckItem:
    md = pkg.metadata
    if md is None:
        return no_metadata("GD-1-4")
    code = md.archival_code or ""
    where = "元数据.xml/档号/完整档号"
    try:
        parts = parse_archival_code(code, template)
    except ArchivalCodeError as exc:
        return item_result("GD-1-4", [Finding("GD-1-4", where, str(exc))], "")
    expected = {"全宗号": md.fonds, "门类代码": md.category, "年度": md.year, "保管期限": md.period,
                "机构问题代码": md.org or "", "件号": str(md.item_number)}
    got = {"全宗号": parts.fonds, "门类代码": parts.category, "年度": f"{parts.year:04d}",
           "保管期限": parts.period.value, "机构问题代码": parts.org, "件号": str(parts.item)}
    findings = [
        Finding("GD-1-4", where, f"{name} {got[name]!r} in the 档号 differs from 档号/{name} {value!r}")
        for name, value in expected.items()
        if got[name] != value
    ]
    return item_result("GD-1-4", findings, f"{code} well-formed")


def _gd_1_5(pkg: PackageUnderCheck) -> CheckItem:
    if pkg.metadata is None:
        return no_metadata("GD-1-5")
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
    return item_result("GD-1-5", findings, "no duplicated entries")


def check_package(
    folder: Path,
    *,
    level: Level = "full",
    source_digests: Mapping[str, str] | None = None,
    archival_code_template: str | None = None,
    warnings: Collection[str] = (),
    checked_at: datetime | None = None,
    pdf_parse_limit: int | None = PDF_PARSE_LIMIT,
    known: KnownFacts | None = None,
    content: ContentOptions | None = None,
) -> CheckReport:
    """Run every DA/T 70 归档 item over a package folder and return the report.

    `source_digests` maps a document's relative path to the digest the source vouched for
    ("sha256:<hex>", "sm3:<hex>", or bare hex = SHA-256); without it GD-1-1 checks against the
    digests 元数据.xml recorded. `archival_code_template` is the fonds' template (DA/T 13 default).
    Items whose code is in `warnings` are reported but do not make the report fail. `known` is
    what the packager measured while writing the package (see KnownFacts); without it every file
    is read and measured here. `content` says how to scan and which signatures and items are
    required (packager.content.content_options).
    """
    if level not in ("quick", "full"):
        raise GuidangError(f"check level must be 'quick' or 'full', not {level!r}")
    if not folder.is_dir():
        raise GuidangError(f"package folder {folder} does not exist")
    options = content or ContentOptions()
    pkg = PackageUnderCheck(folder=folder, level=level, pdf_parse_limit=pdf_parse_limit, options=options)
    take_inventory(pkg)
    if known is not None:
        pkg.take(known)
    items = [_gd_3_1(pkg, known.metadata if known else None)]
    read_package_manifest(pkg, MANIFEST_SM3)
    read_package_manifest(pkg, MANIFEST_SHA256)
    items += [
        _gd_4_2(pkg), _gd_2_1(pkg), _gd_2_2(pkg), _gd_2_3(pkg), _gd_2_4(pkg), _gd_2_5(pkg), _gd_2_6(pkg),
        _gd_1_3(pkg), _gd_1_4(pkg, archival_code_template or DEFAULT_TEMPLATE), _gd_1_5(pkg),
        gd_3_2(pkg), gd_1_2(pkg), gd_1_1(pkg, source_digests), gd_3_3(pkg), gd_1_6(pkg), gd_4_3(pkg), gd_4_1(pkg),
    ]
    for item in items:
        item.warning = item.status == Status.FAIL and item.code in warnings
    items.sort(key=lambda i: code_key(i.code))
    return CheckReport(
        items=items,
        level=level,
        archival_code=pkg.metadata.archival_code if pkg.metadata else None,
        checked_at=checked_at,
        required=options.required_items,
    )


# The items whose result can depend on the 档号 and 件号; every other item reads only what a
# package holds apart from them (documents, digests, 办理过程, 保管期限...).
NUMBER_ITEMS = frozenset({"GD-1-4"})


def renumbered(
    prechecked: CheckReport,
    metadata: etree._ElementTree,
    *,
    archival_code_template: str | None = None,
    warnings: Collection[str] = (),
    checked_at: datetime | None = None,
) -> CheckReport | None:
    """The report `check_package` gives for a package the precheck checked with a provisional 档号,
    once 元数据 (`metadata`, validated by the packager) carries the real one: the precheck's items,
    the 档号's own items (NUMBER_ITEMS) checked again. None when the precheck's report cannot stand
    for the package's: it was not a full check or an item found anything (its findings may name
    files whose bytes the 档号 changes), and the whole check runs instead."""
    if prechecked.level != "full" or not prechecked.passed or any(
        i.findings or i.warning or i.status == Status.FAIL for i in prechecked.items
    ):
        return None
    pkg = PackageUnderCheck(folder=Path(), level="full", metadata=read_metadata(metadata, whole=False))
    again = {"GD-1-4": _gd_1_4(pkg, archival_code_template or DEFAULT_TEMPLATE)}
    items = [replace(again[i.code]) if i.code in again else replace(i) for i in prechecked.items]
    for item in items:
        item.warning = item.status == Status.FAIL and item.code in warnings
    return CheckReport(items=items, level="full", archival_code=pkg.metadata.archival_code if pkg.metadata else None,
                       checked_at=checked_at, required=prechecked.required)
