"""One archived package as the console shows it: 元数据.xml as a readable table, 检测报告.xml as its items
and 结论, the documents with sizes and digests, all read from the archive repository (never written).

Personal data is masked here, once, for every role not allowed to see it (`Masker`): identity
numbers, credit codes and phones by `mask_text`, and the applicant's own name wherever it appears
(the 题名 carries it), which no pattern could find.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from connectors.repositories.base import Repository, RepositoryError
from schemas.layout import CHECK_REPORT_FILE, METADATA_FILE
from schemas.metadata import MetadataDocument, read_metadata
from schemas.model import mask_id
from schemas.personal import mask_name, mask_personal, personal_names
from schemas.xmlio import parse_xml

# the largest XML the console parses from a package (元数据 and 检测报告 are a few KB)
XML_LIMIT = 8 * 1024 * 1024
RESULT_LABELS = {"pass": "通过", "fail": "不通过", "not_applicable": "不适用", "not_performed": "未检测"}
ID_FIELDS = frozenset({"证件号码"})


class Masker:
    """Masks text for a role that may not see personal data; passes it through for one that may.
    What counts as personal, and where a record keeps it, is schemas/personal.py's to say."""

    def __init__(self, *, unmasked: bool, names: list[str] | None = None) -> None:
        self.unmasked = unmasked
        self.names = list(names or [])

    @staticmethod
    def name(value: str) -> str:
        return mask_name(value)

    def __call__(self, text: Any) -> str:
        if text is None:
            return ""
        return str(text) if self.unmasked else mask_personal(text, self.names)

    def field(self, label: str, value: str) -> str:
        if not self.unmasked and label in ID_FIELDS:
            return mask_id(value) or ""
        return self(value)


def names_of(record: dict[str, Any] | None) -> list[str]:
    """The persons' names of a stored record in any of its shapes, to mask wherever they appear."""
    return personal_names(record)


@dataclass
class ReportItem:
    code: str
    nature: str  # 性质: 真实性 / 完整性 / 可用性 / 安全性
    name: str
    result: str
    note: str
    problems: list[tuple[str, str]] = field(default_factory=list)  # (位置, text)
    warning: bool = False


@dataclass
class CheckReportView:
    archival_code: str
    checked_at: str
    level: str
    conclusion: str  # 结论
    algorithms: list[str]
    not_performed: list[tuple[str, bool]]  # (code, required)
    items: list[ReportItem]


@dataclass
class PackageView:
    metadata: list[tuple[str, list[tuple[str, str]]]]  # (section, [(field path, value)])
    documents: list[MetadataDocument]
    report: CheckReportView | None
    problems: list[str]


def read_bounded(repository: Repository, key: str, *, limit: int = XML_LIMIT) -> bytes:
    """A small stored object whole (an XML to parse), refused once it grows past `limit`."""
    chunks, size = [], 0
    for chunk in repository.open(key):
        size += len(chunk)
        if size > limit:
            raise RepositoryError(f"{key}: larger than {limit} bytes, not shown")
        chunks.append(chunk)
    return b"".join(chunks)


def _leaves(el: etree._Element, prefix: str, mask: Masker, out: list[tuple[str, str]]) -> None:
    for child in el:
        if not isinstance(child.tag, str):
            continue  # a comment or processing instruction
        label = f"{prefix}/{child.tag}" if prefix else child.tag
        if "序号" in child.attrib:
            label += f"[{child.get('序号')}]"
        attrs = "；".join(f"{k}={v}" for k, v in child.attrib.items() if k != "序号")
        if len(child):
            if attrs:
                out.append((label, mask(attrs)))
            _leaves(child, label, mask, out)
        else:
            value = (child.text or "").strip()
            out.append((label, mask.field(child.tag, value) + (f"（{mask(attrs)}）" if attrs else "")))


def metadata_table(tree: etree._ElementTree, mask: Masker) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each top-level section of 元数据.xml with its leaves as (path below the section, value)."""
    sections = []
    for section in tree.getroot():
        if not isinstance(section.tag, str):
            continue
        rows: list[tuple[str, str]] = []
        _leaves(section, "", mask, rows)
        if section.tag == "文件信息":
            continue  # shown as the documents table instead
        sections.append((section.tag, rows))
    return sections


def check_report(tree: etree._ElementTree, mask: Masker) -> CheckReportView:
    root = tree.getroot()
    items = []
    for it in root.findall("检测项目"):
        items.append(ReportItem(
            code=it.get("代码", ""), nature=it.get("性质", ""), name=(it.findtext("名称") or "").strip(),
            result=(it.findtext("结果") or RESULT_LABELS.get(it.get("状态", ""), "")).strip(),
            note=mask(it.findtext("说明") or ""), warning=it.get("降为警告") == "true",
            problems=[(mask(p.get("位置", "")), mask(p.text or "")) for p in it.findall("问题")],
        ))
    return CheckReportView(
        archival_code=(root.findtext("档号") or "").strip(), checked_at=(root.findtext("检测时间") or "").strip(),
        level={"full": "完整检测", "quick": "快速检测"}.get(root.get("检测级别", ""), root.get("检测级别", "")),
        conclusion=root.get("结论", ""), algorithms=[(a.text or "").strip() for a in root.findall("摘要算法")],
        not_performed=[(n.get("代码", ""), n.get("必检") == "true") for n in root.findall("未检测项目")],
        items=items,
    )


def package_view(repository: Repository, package_key: str, mask: Masker) -> PackageView:
    """What the repository holds of one package; an unreadable part is a problem on the page, not an error."""
    problems: list[str] = []
    metadata: list[tuple[str, list[tuple[str, str]]]] = []
    documents: list[MetadataDocument] = []
    report = None
    prefix = package_key.rstrip("/")
    try:
        tree = parse_xml(read_bounded(repository, f"{prefix}/{METADATA_FILE}"))
        metadata = metadata_table(tree, mask)
        documents = [
            _masked_document(d, mask) for d in read_metadata(tree).documents
        ]
    except (RepositoryError, etree.XMLSyntaxError) as exc:
        problems.append(f"{METADATA_FILE} 无法读取：{mask(str(exc))}")
    try:
        report = check_report(parse_xml(read_bounded(repository, f"{prefix}/{CHECK_REPORT_FILE}")), mask)
    except (RepositoryError, etree.XMLSyntaxError) as exc:
        problems.append(f"{CHECK_REPORT_FILE} 无法读取：{mask(str(exc))}")
    return PackageView(metadata, documents, report, problems)


def _masked_document(d: MetadataDocument, mask: Masker) -> MetadataDocument:
    from dataclasses import replace

    return replace(d, title=mask(d.title) if d.title else d.title,
                   file_name=mask(d.file_name) if d.file_name else d.file_name,
                   path=mask(d.path) if d.path else d.path)
