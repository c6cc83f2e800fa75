"""`guidang check BATCH`: a DA/T 93 transfer batch checked against itself, its packages and the ledger.

A batch is named by its folder (one holding a 说明文件.txt) or by its id (read from the repository's
`transfers/<id>/`). Cheapest first: the four files are there and both XML files validate; the
目录文件, the 登记表 and the 说明文件 agree with each other (batch id, counts, totals, checkpoint);
then, with the ledger, the listing is the batch's members, the totals are theirs, the stored batch
files have the digests the ledger logged, every listed package is complete in the repository, and
the batch's checkpoint matches the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from connectors.repositories.base import Repository
from guidang_io.block_reads import digest_file
from ledger import anchors, audit_queries
from ledger.store import Ledger
from packager.transfer import (
    CATALOGUE_FILE,
    CATALOGUE_XSD,
    README_FILE,
    REGISTER_HTML_FILE,
    REGISTER_XML_FILE,
    REGISTER_XSD,
)
from schemas import anchor
from schemas.anchor import Checkpoint
from schemas.findings import Finding
from schemas.layout import COMPLETION_MARKER
from schemas.xmlio import parse_xml, validate_xml

BATCH_FILES = (README_FILE, CATALOGUE_FILE, REGISTER_XML_FILE, REGISTER_HTML_FILE)


@dataclass
class BatchReport:
    batch_id: str
    folder: str
    packages: int = 0
    checked_against_ledger: bool = False
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "folder": self.folder, "packages": self.packages,
                "checked_against_ledger": self.checked_against_ledger, "passed": self.passed,
                "findings": [f.to_dict() for f in self.findings]}


def is_batch_folder(path: Path) -> bool:
    return path.is_dir() and (path / README_FILE).is_file()


@dataclass
class _Read:
    codes: list[str] = field(default_factory=list)
    pages: int = 0
    register: dict[str, str] = field(default_factory=dict)
    register_anchor: Checkpoint | None = None
    readme_anchor: Checkpoint | None = None
    catalogue_batch: str | None = None
    register_batch: str | None = None


def _valid_root(folder: Path, name: str, xsd: str, report: BatchReport) -> Any:
    """The root of the batch's XML file `name`, parsed once and valid against `xsd`; None (and the
    findings in the report) when it is absent, not well-formed or invalid."""
    path = folder / name
    if not path.is_file():
        return None
    try:
        tree = parse_xml(path)
    except (etree.XMLSyntaxError, OSError):
        tree = None  # validate_xml names what is wrong with it
    problems = validate_xml(tree if tree is not None else path, xsd, code="A-BATCH-INVALID", where=name)
    report.findings += problems
    return tree.getroot() if tree is not None and not problems else None


def _read_batch(folder: Path, report: BatchReport) -> _Read:
    got = _Read()
    for name in BATCH_FILES:
        if not (folder / name).is_file():
            report.findings.append(Finding("A-BATCH-FILE-MISSING", name, "the batch lacks this file"))
    root = _valid_root(folder, CATALOGUE_FILE, CATALOGUE_XSD, report)
    if root is not None:
        got.catalogue_batch = root.get("批次号")
        got.codes = [(e.findtext("档号") or "") for e in root.iter("条目")]
        got.pages = sum(int(e.findtext("页数") or 0) for e in root.iter("条目"))
    root = _valid_root(folder, REGISTER_XML_FILE, REGISTER_XSD, report)
    if root is not None:
        got.register_batch = root.get("批次号")
        got.register = {e.tag: (e.text or "") for e in root if isinstance(e.tag, str)}
        a = root.find("账本检查点")
        if a is not None:
            got.register_anchor = Checkpoint(int(a.findtext("事件序号") or 0), a.findtext("事件摘要") or "",
                                             a.findtext("记录时间") or "", a.findtext("运行标识"),
                                             where=REGISTER_XML_FILE)
    if (folder / README_FILE).is_file():
        text = (folder / README_FILE).read_text(encoding="utf-8", errors="replace")
        got.readme_anchor = anchor.parse_readme(README_FILE, text)
    return got


def _self_consistency(got: _Read, report: BatchReport) -> None:
    for where, found in ((CATALOGUE_FILE, got.catalogue_batch), (REGISTER_XML_FILE, got.register_batch)):
        if found is not None and found != report.batch_id:
            report.findings.append(Finding("A-BATCH-MISMATCH", where,
                                           f"批次号 {found!r}, the batch is {report.batch_id!r}"))
    if got.register and got.register.get("移交电子档案数量") != str(len(got.codes)):
        report.findings.append(Finding("A-BATCH-TOTALS", REGISTER_XML_FILE,
                                       f"移交电子档案数量 {got.register.get('移交电子档案数量')}, "
                                       f"{CATALOGUE_FILE} lists {len(got.codes)}"))
    if got.register and got.register.get("总页数") != str(got.pages):
        report.findings.append(Finding("A-BATCH-TOTALS", REGISTER_XML_FILE,
                                       f"总页数 {got.register.get('总页数')}, {CATALOGUE_FILE} sums {got.pages}"))
    a, b = got.readme_anchor, got.register_anchor
    if a is not None and b is not None and (a.seq, a.hash) != (b.seq, b.hash):
        report.findings.append(Finding(
            "A-BATCH-MISMATCH", README_FILE,
            f"its checkpoint (event {a.seq}) differs from {REGISTER_XML_FILE}'s (event {b.seq})"))


def _against_ledger(got: _Read, folder: Path, ledger: Ledger, repository: Repository | None,
                    report: BatchReport) -> None:
    with ledger.read() as s:
        members = list(audit_queries.batch_members(s, report.batch_id))
        event = audit_queries.batch_event(s, report.batch_id)
        points = [cp for cp in (got.readme_anchor, got.register_anchor) if cp is not None]
        report.findings += anchors.check_checkpoints(s, points)
    report.checked_against_ledger = True
    if not members:
        report.findings.append(Finding("A-BATCH-MISMATCH", report.batch_id,
                                       "the ledger has no matter in this batch"))
        return
    listed, recorded = set(got.codes), {m.archival_code or "" for m in members}
    for code in sorted(recorded - listed):
        report.findings.append(Finding("A-BATCH-LISTING", CATALOGUE_FILE,
                                       f"档号 {code} is in the batch per the ledger, not in the catalogue"))
    for code in sorted(listed - recorded):
        report.findings.append(Finding("A-BATCH-LISTING", CATALOGUE_FILE,
                                       f"档号 {code} is listed, but the ledger does not put it in this batch"))
    want = {"电子文件数量": sum(m.file_count or 0 for m in members),
            "字节数": sum(m.total_bytes or 0 for m in members),
            "总页数": sum(m.page_count or 0 for m in members), "移交电子档案数量": len(members)}
    for name, value in want.items():
        if got.register and got.register.get(name) != str(value):
            report.findings.append(Finding("A-BATCH-TOTALS", REGISTER_XML_FILE,
                                           f"{name} {got.register.get(name)}, the ledger's members sum {value}"))
    digests = ((event.payload or {}).get("digests") or {}) if event is not None else {}
    for name, d in sorted(digests.items()):
        path = folder / name
        if path.is_file() and digest_file(path).sha256 != d.get("sha256"):
            report.findings.append(Finding("A-OBJECT-CHANGED", name, "differs from the SHA-256 the ledger logged "
                                                                     "when the batch was stored"))
    if repository is not None:
        for m in members:
            if not repository.exists(f"{m.package_key}/{COMPLETION_MARKER}"):
                report.findings.append(Finding(
                    "A-OBJECT-MISSING", f"{m.package_key}/{COMPLETION_MARKER}",
                    f"档号 {m.archival_code}: the package is not complete in the repository"))


def check_batch(folder: Path, batch_id: str, *, ledger: Ledger | None, repository: Repository | None) -> BatchReport:
    report = BatchReport(batch_id=batch_id, folder=str(folder))
    try:
        got = _read_batch(folder, report)
    except (etree.XMLSyntaxError, OSError, ValueError) as exc:
        report.findings.append(Finding("A-BATCH-INVALID", str(folder), f"cannot be read: {exc}"))
        return report
    report.packages = len(got.codes)
    _self_consistency(got, report)
    if ledger is not None:
        _against_ledger(got, folder, ledger, repository, report)
    return report
