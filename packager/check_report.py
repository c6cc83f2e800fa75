"""The 检测报告 (check report) of one package: its items, its verdict, and 检测报告.xml.

Separate from the checks themselves (packager/checks.py) because three readers need the report
and not the checks: the packager writes it into every package, `guidang check` prints it, and the
schema test validates it against schemas/check_report.xsd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from schemas.findings import Finding, code_text
from schemas.layout import CHECK_REPORT_FILE
from schemas.metadata import zoned_time
from schemas.xmlio import validate_xml

CHECK_REPORT_XSD = "check_report.xsd"
CHECK_REPORT_VERSION = "1.0"
DIGEST_ALGORITHMS: tuple[str, ...] = ("SM3", "SHA-256")

Level = Literal["quick", "full"]  # quick: stop before anything that reads whole files

_PROPERTIES = {"1": "真实性", "2": "完整性", "3": "可用性", "4": "安全性"}
_RESULT_TEXT = {"pass": "通过", "fail": "不通过", "not_applicable": "不适用", "not_performed": "未检测"}


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    NOT_PERFORMED = "not_performed"


def code_key(code: str) -> tuple[int, ...]:
    """GD-1-10 after GD-1-9: items sort by their numbers, not as text."""
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
    # Items that must be performed and pass for 通过 (packager.content.DEFAULT_REQUIRED unless the
    # configuration says otherwise). At the quick level the items it skips by design are exempt.
    required: frozenset[str] = frozenset()

    @property
    def not_performed(self) -> list[CheckItem]:
        return [i for i in self.items if i.status == Status.NOT_PERFORMED]

    @property
    def missing_required(self) -> list[CheckItem]:
        """Required items that were not performed: the verdict cannot be 通过 without them."""
        return [i for i in self.not_performed if i.code in self.required
                and not (self.level == "quick" and i.detail.startswith("quick level"))]

    @property
    def failed_items(self) -> list[CheckItem]:
        """Failed items that count (not downgraded to warnings)."""
        return [i for i in self.items if i.status == Status.FAIL and not i.warning]

    @property
    def warning_items(self) -> list[CheckItem]:
        return [i for i in self.items if i.status == Status.FAIL and i.warning]

    @property
    def passed(self) -> bool:
        """通过: nothing failed and every required item was performed."""
        return not self.failed_items and not self.missing_required

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
            "not_performed": [i.code for i in self.not_performed],
            "required_not_performed": [i.code for i in self.missing_required],
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
            etree.SubElement(root, "检测时间").text = zoned_time(self.checked_at, "检测时间")
        for algorithm in DIGEST_ALGORITHMS:
            etree.SubElement(root, "摘要算法").text = algorithm
        missing = {i.code for i in self.missing_required}
        for item in self.not_performed:
            etree.SubElement(root, "未检测项目",
                             {"代码": item.code, "必检": "true" if item.code in missing else "false"})
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
                attrs = {"位置": f.where, **({"级别": "警告"} if f.severity == "warning" else {})}
                etree.SubElement(el, "问题", attrs).text = f.message
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def validate_check_report(source: bytes | Path) -> list[Finding]:
    return validate_xml(source, CHECK_REPORT_XSD, code="CHECK-REPORT-INVALID", where=CHECK_REPORT_FILE)
