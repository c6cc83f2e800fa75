"""元数据.xml of a package: build it with lxml, validate it against schemas/metadata.xsd, read it back.

Building and reading live side by side so that the element names are spelled in one module (and
the XSD); the packager writes with `build_metadata`, the 四性检测 reads with `read_metadata`, and
neither knows an XPath. The metadata is a pure function of its inputs (no clock, no environment),
which is what makes a rebuilt package byte-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from lxml import etree

from schemas.config import Fonds
from schemas.findings import Finding, GuidangError
from schemas.model import Appraisal, DocumentGroup, Matter
from schemas.signature_info import SignatureRecord, read_signature_info, write_signature_info
from schemas.xmlio import validate_xml

METADATA_XSD = "metadata.xsd"
METADATA_VERSION = "1.0"
DEFAULT_SECURITY_CLASS = "公开"  # 密级
# China has one time zone and no DST: a completion date is the Beijing-time calendar date.
BEIJING = timezone(timedelta(hours=8))

# Paths (below the root 元数据) of every element the XSD makes mandatory: the 元数据项完整性 check
# (GD-2-3) walks this list, and a test checks it against the XSD so the two cannot drift apart.
MANDATORY_ELEMENTS: tuple[str, ...] = (
    "档号",
    "档号/全宗号",
    "档号/门类代码",
    "档号/年度",
    "档号/保管期限",
    "档号/件号",
    "档号/完整档号",
    "内容描述",
    "内容描述/题名",
    "内容描述/责任者",
    "内容描述/日期",
    "内容描述/密级",
    "形式特征",
    "形式特征/文件组合类型",
    "形式特征/件数",
    "形式特征/页数",
    "形式特征/总字节数",
    "业务信息",
    "业务信息/来源系统",
    "业务信息/办件编号",
    "业务信息/事项编码",
    "业务信息/事项名称",
    "业务信息/事项类型",
    "业务信息/实施机构",
    "业务信息/申请人",
    "业务信息/申请人/申请人名称",
    "业务信息/办结时间",
    "业务信息/办理过程",
    "业务信息/办理过程/办理环节/环节名称",
    "业务信息/证照/证照名称",
    "文件信息",
    "文件信息/文件",
    "文件信息/文件/材料类别",
    "文件信息/文件/题名",
    "文件信息/文件/文件名",
    "文件信息/文件/相对路径",
    "文件信息/文件/格式",
    "文件信息/文件/媒体类型",
    "文件信息/文件/大小",
    "文件信息/文件/SM3",
    "文件信息/文件/SHA-256",
    "文件信息/文件/签名信息/签名",
    "文件信息/文件/签名信息/签名/类型",
    "文件信息/文件/签名信息/签名/状态",
    "文件信息/文件/检测提示/提示",
    "文件信息/文件/格式转换/源文件",
    "文件信息/文件/格式转换/转换工具",
    "文件信息/文件/格式转换/工具版本",
    "文件信息/文件/格式转换/转换时间",
    "文件信息/文件/格式转换/源格式",
    "文件信息/文件/格式转换/目标格式",
    "文件信息/文件/格式转换/转换结果",
    "保管信息",
    "保管信息/归档范围",
    "保管信息/保管期限",
    "保管信息/保管期限表版本",
    "保管信息/规则行号",
    "保管信息/归档时间",
)

_CONTAINERS = frozenset(
    {"档号", "内容描述", "形式特征", "业务信息", "业务信息/申请人", "业务信息/办理过程", "文件信息",
     "文件信息/文件", "保管信息", "文件信息/文件/签名信息/签名"}
)


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    """What 元数据.xml records about one document of the package (the packager fills it)."""

    group: DocumentGroup
    title: str
    file_name: str
    path: str  # relative path in the package, schemas.layout.document_path(group, file_name)
    format: str  # e.g. "PDF", from the file's own bytes
    media_type: str
    size: int
    sm3: str
    sha256: str
    pages: int | None = None
    original_file_name: str | None = None  # the source's name, when it had to be stored otherwise
    format_name: str | None = None  # PRONOM's name (OFD: GB/T 33190), packager/format_id.py
    format_version: str | None = None
    pronom_id: str | None = None  # PUID, e.g. fmt/276; absent for formats PRONOM does not register
    signatures: tuple[SignatureRecord, ...] = ()  # 签名信息
    format_profile: str | None = None  # 格式子类型, e.g. OFD-A (the archival profile of OFD)
    # 检测提示: what the content inspection found that readers tolerate (severity warning, with a count)
    warnings: tuple[Finding, ...] = ()
    conversion: ConversionRecord | None = None  # 格式转换: this document is a rendition of another


@dataclass(frozen=True, slots=True)
class ConversionRecord:
    """格式转换: the processing event that made a rendition (转换件) from an original the package
    also keeps, byte for byte. Written on the rendition's 文件 entry; its 转换时间 is the run's time
    (归档时间), as every time in the package is, so that a resumed night rebuilds it byte for byte."""

    source_path: str  # 源文件: the original's 相对路径
    tool: str  # e.g. LibreOffice
    tool_version: str
    source_format: str  # e.g. DOCX
    target_format: str  # e.g. PDF/A-2b


def matter_title(matter: Matter) -> str:
    """题名: the matter's name with the applicant's name (the project id when there is no name),
    which is how an archivist tells two 食品经营许可 files apart in a catalogue."""
    who = matter.applicant.name.strip() if matter.applicant.name else ""
    return f"{matter.service_name}（{who}）" if who else f"{matter.service_name}（办件编号 {matter.project_id}）"


def beijing_date(moment: datetime) -> str:
    """YYYYMMDD; aware times are converted to Beijing time, naive ones are taken as already local."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(BEIJING)
    return moment.strftime("%Y%m%d")


def zoned_time(moment: datetime, what: str) -> str:
    """ISO 8601 with its offset, for every time a package, register or report shows (归档时间, 检测时间,
    移交时间). The caller converts to the configured zone (`Settings.zone`); a naive time would be
    written without an offset and read as anyone's local time, so it is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise GuidangError(f"{what} {moment.isoformat()} has no time zone; pass it in the configured zone")
    return moment.isoformat()


def _text(parent: etree._Element, name: str, value: object | None) -> etree._Element | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    el = etree.SubElement(parent, name)
    el.text = value.isoformat() if isinstance(value, datetime) else str(value)
    return el


# The elements of one 文件 and one 办理环节, in the XSD's order: written from DocumentEntry and
# ProcessStep by build_metadata, read back into MetadataDocument by read_metadata.
_DOCUMENT_PATHS = {
    "group": "材料类别", "title": "题名", "file_name": "文件名", "original_file_name": "原文件名",
    "path": "相对路径", "format": "格式",
    "media_type": "媒体类型", "format_name": "格式名称", "format_version": "格式版本",
    "format_profile": "格式子类型", "pronom_id": "PRONOM标识",
    "size": "大小", "pages": "页数", "sm3": "SM3", "sha256": "SHA-256",
}
_STEP_TAGS = {
    "name": "环节名称", "actor": "办理人", "department": "办理部门", "opinion": "办理意见",
    "started_at": "开始时间", "ended_at": "结束时间",
}


def build_metadata(
    matter: Matter,
    appraisal: Appraisal,
    documents: Sequence[DocumentEntry],
    *,
    fonds: Fonds,
    archival_code: str,
    item_number: int,
    archived_at: datetime,
    security_class: str = DEFAULT_SECURITY_CLASS,
) -> bytes:
    """The 元数据.xml bytes (UTF-8, declaration, indented). Optional values that are absent are
    left out rather than written empty, so "not given" and "given as empty" cannot be confused."""
    root = etree.Element("元数据", {"版本": METADATA_VERSION})

    code = etree.SubElement(root, "档号")
    _text(code, "全宗号", fonds.code)
    _text(code, "门类代码", appraisal.category_code)
    _text(code, "年度", f"{appraisal.year:04d}")
    _text(code, "保管期限", appraisal.retention_period.value if appraisal.retention_period else None)
    _text(code, "机构问题代码", appraisal.org_code)
    _text(code, "件号", item_number)
    _text(code, "完整档号", archival_code)

    desc = etree.SubElement(root, "内容描述")
    _text(desc, "题名", matter_title(matter))
    _text(desc, "责任者", matter.agency)
    _text(desc, "日期", beijing_date(matter.completed_at))
    _text(desc, "文号", matter.result_document_number)
    _text(desc, "密级", security_class)

    form = etree.SubElement(root, "形式特征")
    _text(form, "文件组合类型", "单件" if len(documents) == 1 else "组合文件")
    _text(form, "件数", len(documents))
    _text(form, "页数", sum(d.pages or 0 for d in documents))
    _text(form, "总字节数", sum(d.size for d in documents))

    biz = etree.SubElement(root, "业务信息")
    _text(biz, "来源系统", matter.source)
    _text(biz, "办件编号", matter.project_id)
    _text(biz, "事项编码", matter.service_code)
    _text(biz, "事项名称", matter.service_name)
    _text(biz, "事项版本", matter.service_version)
    kind = _text(biz, "事项类型", matter.matter_type_name)
    if kind is not None:
        kind.set("代码", matter.matter_type)
    _text(biz, "办件类型", matter.handling_type)
    _text(biz, "实施机构", matter.agency)
    _text(biz, "实施机构代码", matter.agency_code)
    _text(biz, "区划代码", matter.region_code)
    app = etree.SubElement(biz, "申请人")
    _text(app, "申请人名称", matter.applicant.name)
    _text(app, "证件类型", matter.applicant.card_type)
    _text(app, "证件号码", matter.applicant.card_number)
    _text(biz, "受理时间", matter.received_at)
    _text(biz, "办结时间", matter.completed_at)
    process = etree.SubElement(biz, "办理过程")
    for i, step in enumerate(matter.steps, start=1):
        s = etree.SubElement(process, "办理环节", {"序号": str(i)})
        for name, tag in _STEP_TAGS.items():
            _text(s, tag, getattr(step, name))
    _text(biz, "办理结果", matter.result)
    _text(biz, "决定时间", matter.decided_at)
    if matter.license_name:
        lic = etree.SubElement(biz, "证照")
        _text(lic, "证照名称", matter.license_name)
        _text(lic, "证照编号", matter.license_number)

    files = etree.SubElement(root, "文件信息")
    for i, d in enumerate(documents, start=1):
        f = etree.SubElement(files, "文件", {"序号": str(i)})
        for name, tag in _DOCUMENT_PATHS.items():
            _text(f, tag, getattr(d, name))
        write_signature_info(f, d.signatures)
        if d.warnings:
            notes = etree.SubElement(f, "检测提示", {"数量": str(len(d.warnings))})
            for w in d.warnings:
                count = str(w.details.get("count", 1))
                etree.SubElement(notes, "提示", {"代码": w.code, "次数": count}).text = w.message
        if d.conversion is not None:
            c = d.conversion
            event = etree.SubElement(f, "格式转换")
            for tag, value in (("源文件", c.source_path), ("转换工具", c.tool), ("工具版本", c.tool_version),
                               ("转换时间", zoned_time(archived_at, "转换时间")),
                               ("源格式", c.source_format), ("目标格式", c.target_format), ("转换结果", "成功")):
                _text(event, tag, value)

    keep = etree.SubElement(root, "保管信息")
    _text(keep, "归档范围", "归档" if appraisal.in_scope else "不归档")
    _text(keep, "保管期限", appraisal.retention_period.value if appraisal.retention_period else None)
    _text(keep, "保管期限表版本", appraisal.table_version)
    _text(keep, "规则行号", appraisal.rule_row)
    _text(keep, "依据", appraisal.rule_basis)
    for g in appraisal.excluded_groups:
        _text(keep, "不归档材料类别", g.value)
    _text(keep, "到期鉴定日期", appraisal.disposition_date)
    _text(keep, "归档时间", zoned_time(archived_at, "归档时间"))

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- validation ----------------------------------------------------------------------------------

def validate_metadata(
    source: bytes | Path | etree._ElementTree, *, code: str = "Q-METADATA-INVALID", where: str = "元数据.xml"
) -> list[Finding]:
    return validate_xml(source, METADATA_XSD, code=code, where=where)


# -- reading back --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MetadataDocument:
    """One 文件 entry as read back; every field may be missing in a damaged package."""

    index: int
    group: str | None
    title: str | None
    file_name: str | None
    path: str | None
    format: str | None
    media_type: str | None
    size: int | None
    pages: int | None
    sm3: str | None
    sha256: str | None
    original_file_name: str | None = None
    format_name: str | None = None
    format_version: str | None = None
    pronom_id: str | None = None
    signatures: tuple[SignatureRecord, ...] = ()
    format_profile: str | None = None
    rendition_of: str | None = None  # 格式转换/源文件: the original this document was converted from


@dataclass(frozen=True, slots=True)
class MetadataView:
    """The parts of 元数据.xml the checks need, read tolerantly (None where absent or not a number)."""

    tree: etree._ElementTree
    archival_code: str | None
    fonds: str | None
    category: str | None
    year: str | None
    period: str | None
    org: str | None
    item_number: int | None
    title: str | None
    document_count: int | None
    pages_total: int | None
    bytes_total: int | None
    step_names: list[str] = field(default_factory=list)
    scope: str | None = None
    keep_period: str | None = None
    documents: list[MetadataDocument] = field(default_factory=list)

    def missing_mandatory(self) -> list[str]:
        """Mandatory element paths that are absent or empty (per repeated parent, e.g. each 文件).

        A container with no children (an empty 办理过程) is present as far as this goes; what it
        should hold is judged by the item that cares (GD-2-4 for the steps)."""
        root = self.tree.getroot()
        missing = []
        for path in MANDATORY_ELEMENTS:
            parent_path, _, leaf = path.rpartition("/")
            parents = root.findall(parent_path) if parent_path else [root]
            for i, parent in enumerate(parents, start=1):
                el = parent.find(leaf)
                if el is None or (path not in _CONTAINERS and not (el.text or "").strip()):
                    label = path if len(parents) == 1 else f"{parent_path}[{i}]/{leaf}"
                    missing.append(label)
        return missing


def _get(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# Where each field of the view sits, from the root; fields in _NUMBERS are read as whole numbers.
_VIEW_PATHS = {
    "archival_code": "档号/完整档号", "fonds": "档号/全宗号", "category": "档号/门类代码", "year": "档号/年度",
    "period": "档号/保管期限", "org": "档号/机构问题代码", "item_number": "档号/件号", "title": "内容描述/题名",
    "document_count": "形式特征/件数", "pages_total": "形式特征/页数", "bytes_total": "形式特征/总字节数",
    "scope": "保管信息/归档范围", "keep_period": "保管信息/保管期限",
}
_NUMBERS = frozenset({"size", "pages", "item_number", "document_count", "pages_total", "bytes_total"})


def _fields(el: etree._Element, paths: dict[str, str]) -> dict[str, Any]:
    return {name: _int(_get(el, p)) if name in _NUMBERS else _get(el, p) for name, p in paths.items()}


def read_metadata(tree: etree._ElementTree, *, whole: bool = True) -> MetadataView:
    """The view the checks read; `whole=False` leaves out the documents and steps, which a check of
    the 档号 alone (checks.renumbered) does not read: half its time for five documents."""
    root = tree.getroot()
    docs = [
        MetadataDocument(index=i, **_fields(f, _DOCUMENT_PATHS), signatures=read_signature_info(f),
                         rendition_of=_get(f, "格式转换/源文件"))
        for i, f in enumerate(root.findall("文件信息/文件"), start=1)
    ] if whole else []
    return MetadataView(
        tree=tree,
        **_fields(root, _VIEW_PATHS),
        step_names=[(s.text or "").strip()
                    for s in root.findall("业务信息/办理过程/办理环节/环节名称")] if whole else [],
        documents=docs,
    )
