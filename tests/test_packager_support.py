"""Shared builders for the packager, metadata and check tests (no tests of its own).

A matter is built from schemas.model classes with real PDF bytes; the opener streams them from a
dict in small chunks, as a source connector would, and fails like one for a missing locator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lxml import etree

from guidang_demo.pdfs import make_pdf
from packager.package import PackageFile, PackageResult, finalize_package, manifest_texts
from packager.stage import StagedMatter, stage_matter
from retention.archival_code import compose_archival_code
from schemas.config import Fonds
from schemas.errors import DocumentUnavailable
from schemas.layout import GROUP_FOLDERS, METADATA_FILE
from schemas.model import Applicant, Appraisal, Document, Matter, ProcessStep, RetentionPeriod

CST = timezone(timedelta(hours=8))
FONDS = Fonds(code="Z109", name="西湖区行政审批档案全宗")
ARCHIVED_AT = datetime(2026, 3, 2, 2, 0, tzinfo=CST)
CARD = "330106199001011234"
CHUNK = 1000


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sm3(data: bytes) -> str:
    return hashlib.new("sm3", data).hexdigest()


def default_steps() -> list[ProcessStep]:
    t0 = datetime(2026, 2, 10, 9, 0, tzinfo=CST)
    names = ["申请", "受理", "审查", "决定", "送达"]
    return [
        ProcessStep(name=n, actor=f"工作人员{i}", department="审批科", opinion="同意",
                    started_at=t0 + timedelta(hours=i), ended_at=t0 + timedelta(hours=i, minutes=30))
        for i, n in enumerate(names)
    ]


def doc(group: str, file_name: str, data: bytes, *, title: str | None = None, media_type: str = "application/pdf",
        declare: bool = True, **overrides: object) -> tuple[Document, bytes]:
    """A document and its bytes; `declare` gives it the source-side size and digests."""
    fields: dict[str, object] = {
        "group": group, "title": title or file_name, "file_name": file_name, "media_type": media_type,
        "locator": f"loc:{group}/{file_name}/{len(data)}",
    }
    if declare:
        fields |= {"size": len(data), "source_sha256": sha256(data), "source_sm3": sm3(data)}
    fields |= overrides
    return Document(**fields), data


def good_documents() -> list[tuple[Document, bytes]]:
    return [
        doc("申报材料", "申请书.pdf", make_pdf(["application form", "Hangzhou Foo Co."], pages=2),
            title="食品经营许可申请书"),
        doc("申报材料", "营业执照.pdf", make_pdf(["business licence copy"]), title="营业执照副本"),
        doc("过程材料", "现场核查记录.pdf", make_pdf(["site inspection"], pages=3), title="现场核查记录"),
        doc("结果材料", "准予许可决定书.pdf", make_pdf(["decision: granted"]), title="准予行政许可决定书"),
    ]


def make_matter(
    documents: list[tuple[Document, bytes]] | None = None, **overrides: object
) -> tuple[Matter, dict[str, bytes]]:
    documents = good_documents() if documents is None else documents
    fields: dict[str, object] = {
        "source": "unified",
        "project_id": "330106260210000123",
        "service_code": "330106-XK-0001",
        "service_version": "3",
        "service_name": "食品经营许可",
        "matter_type": "01",
        "handling_type": "承诺件",
        "agency": "西湖区市场监督管理局",
        "agency_code": "11330106MB0001",
        "region_code": "330106",
        "applicant": Applicant(name="杭州某某餐饮有限公司", card_type="居民身份证", card_number=CARD),
        "steps": default_steps(),
        "result": "准予许可",
        "decided_at": datetime(2026, 2, 10, 12, 0, tzinfo=CST),
        "result_document_number": "西市监许〔2026〕123号",
        "license_name": "食品经营许可证",
        "license_number": "JY13301060012345",
        "received_at": datetime(2026, 2, 10, 9, 0, tzinfo=CST),
        "completed_at": datetime(2026, 2, 10, 16, 30, tzinfo=CST),
        "updated_at": datetime(2026, 2, 10, 16, 31, tzinfo=CST),
        "documents": [d for d, _ in documents],
    }
    fields |= overrides
    # a locator starting "loc:gone" names a document the source cannot deliver
    return Matter(**fields), {d.locator: data for d, data in documents if not d.locator.startswith("loc:gone")}


def appraisal(**overrides: object) -> Appraisal:
    fields: dict[str, object] = {
        "in_scope": True, "retention_period": RetentionPeriod.D30, "category_code": "WS", "org_code": "SJ",
        "year": 2026, "disposition_date": "2056-12-31", "table_version": "v-3f2a9c", "rule_row": 12,
        "rule_basis": "《西湖区政务服务事项电子文件归档范围和保管期限表》第12条",
    }
    fields |= overrides
    return Appraisal(**fields)


def opener(contents: dict[str, bytes]):
    def open_document(document: Document) -> Iterator[bytes]:
        if document.locator not in contents:
            raise DocumentUnavailable(f"HTTP 404 for {document.locator}")
        data = contents[document.locator]
        for i in range(0, len(data), CHUNK):
            yield data[i:i + CHUNK]
    return open_document


def archival_code(item: int = 1, a: Appraisal | None = None) -> str:
    a = a or appraisal()
    return compose_archival_code(FONDS.archival_code_template, fonds=FONDS.code, category=a.category_code,
                                 year=a.year, period=a.retention_period, org=a.org_code, item=item)


def stage(tmp_path: Path, matter: Matter, contents: dict[str, bytes], a: Appraisal | None = None) -> StagedMatter:
    return stage_matter(matter, a or appraisal(), opener(contents), tmp_path / "staging")


def finalize(staged: StagedMatter, item: int = 1, **kw: object) -> PackageResult:
    return finalize_package(staged, fonds=FONDS, archival_code=archival_code(item, staged.appraisal),
                            item_number=item, archived_at=ARCHIVED_AT, **kw)


def build(tmp_path: Path, documents: list[tuple[Document, bytes]] | None = None, **kw: object) -> PackageResult:
    matter, contents = make_matter(documents)
    return finalize(stage(tmp_path, matter, contents), **kw)


# -- forging packages for the check tests --------------------------------------------------------

def rewrite_manifests(folder: Path) -> None:
    """Re-list every document and 元数据.xml, as a careful forger would after editing the package."""
    rows = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and (rel == METADATA_FILE or rel.split("/", 1)[0] in GROUP_FOLDERS):
            data = p.read_bytes()
            rows.append(PackageFile(rel, len(data), sha256(data), sm3(data)))
    for name, data in manifest_texts(rows).items():
        (folder / name).write_bytes(data)


def edit_metadata(folder: Path, edit) -> None:
    """Apply `edit(root)` to 元数据.xml and write it back, then re-list the manifests."""
    path = folder / METADATA_FILE
    tree = etree.parse(str(path))
    edit(tree.getroot())
    path.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8", pretty_print=True))
    rewrite_manifests(folder)


def replace_document(folder: Path, rel: str, data: bytes, *, fmt: str | None = None,
                     pages: int | None = None) -> None:
    """Swap a document's content and make 元数据.xml and the manifests agree with it, so that only
    what the content itself is (format, readability, active content) can give it away. `pages`
    None removes the entry's 页数 (a PDF that does not open has none)."""
    (folder / rel).write_bytes(data)

    def edit(root: etree._Element) -> None:
        for f in root.findall("文件信息/文件"):
            if f.findtext("相对路径") == rel:
                old = int(f.findtext("大小"))
                f.find("大小").text = str(len(data))
                f.find("SM3").text = sm3(data)
                f.find("SHA-256").text = sha256(data)
                if fmt is not None:
                    f.find("格式").text = fmt
                page_el = f.find("页数")
                old_pages = int(page_el.text) if page_el is not None else 0
                total_pages = root.find("形式特征/页数")
                total_pages.text = str(int(total_pages.text) - old_pages + (pages or 0))
                if pages is None and page_el is not None:
                    f.remove(page_el)
                elif pages is not None:
                    page_el.text = str(pages)
                total = root.find("形式特征/总字节数")
                total.text = str(int(total.text) - old + len(data))
    edit_metadata(folder, edit)
