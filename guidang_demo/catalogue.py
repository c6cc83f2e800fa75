"""The demo world's shared facts: its matter-type catalogue (事项目录), its 全宗 and its week.

One list so that the unified simulator's catalogue endpoint, the self-built systems' data and the
demo retention workbook agree on codes, names, 事项类型 and 实施机构 without copying each other.
`retention` says what the demo workbook does with the type: a period, 不归档, or no rule at all
(so that coverage and quarantine have something to show).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    service_code: str  # 事项编码
    service_name: str  # 事项名称
    matter_type: str  # 事项类型 code
    agency: str  # 实施机构
    agency_code: str
    source: str  # which demo source produces matters of this type ("" = catalogue only)
    retention: str  # "Y" / "D30" / "D10" / "不归档" / "" (no rule in the demo workbook)
    org_code: str  # 机构问题代码 used by the demo workbook


# 机构问题代码 -> (实施机构, its code): each demo agency files under one 机构问题代码.
_AGENCIES: dict[str, tuple[str, str]] = {
    "SJ": ("西湖区市场监督管理局", "11330106MB0001"),
    "ZJ": ("西湖区住房和城乡建设局", "11330106MB0003"),
    "MZ": ("西湖区民政局", "11330106MB0004"),
    "RS": ("西湖区人力资源和社会保障局", "11330106MB0005"),
    "FG": ("西湖区发展和改革局", "11330106MB0006"),
    "HB": ("杭州市生态环境局西湖分局", "11330106MB0007"),
    "WJ": ("西湖区卫生健康局", "11330106MB0008"),
}


def agency_of(org: str) -> tuple[str, str]:
    """(实施机构, its code) of a demo 机构问题代码."""
    return _AGENCIES[org]


def _entry(code: str, name: str, matter_type: str, org: str, source: str, retention: str) -> CatalogueEntry:
    agency, agency_code = _AGENCIES[org]
    return CatalogueEntry(code, name, matter_type, agency, agency_code, source, retention, org)


DEMO_CATALOGUE: tuple[CatalogueEntry, ...] = (
    # unified system (政务服务网统建系统)
    _entry("330106-XK-0001", "食品经营许可", "01", "SJ", "unified", "D30"),
    _entry("330106-XK-0002", "药品零售企业许可", "01", "SJ", "unified", "D30"),
    _entry("330106-XK-0003", "建筑工程施工许可", "01", "ZJ", "unified", "Y"),
    _entry("330106-QR-0001", "个体工商户设立登记", "07", "SJ", "unified", "D10"),
    _entry("330106-JF-0001", "最低生活保障金给付", "05", "MZ", "unified", "D30"),
    _entry("330106-CF-0001", "对未取得食品经营许可从事食品经营活动的处罚", "02", "SJ", "unified", "Y"),
    _entry("330106-GG-0001", "婚姻登记档案查询", "20", "MZ", "unified", "不归档"),
    _entry("330106-QT-0001", "职业技能等级认定", "10", "RS", "unified", ""),
    # self-built: investment-project approval platform (投资项目在线审批监管平台)
    _entry("330106-XK-0101", "企业投资项目核准", "01", "FG", "tzxm", "Y"),
    _entry("330106-QT-0102", "企业投资项目备案", "10", "FG", "tzxm", "D30"),
    # self-built: 双随机 random-inspection system
    _entry("330106-JC-0201", "食品生产经营日常监督检查", "06", "SJ", "sjjc", "D10"),
    _entry("330106-JC-0202", "排污单位监督检查", "06", "HB", "sjjc", "D30"),
    # in the catalogue only: no matters in the demo data (coverage reports those without a rule)
    _entry("330106-XK-0004", "公共场所卫生许可", "01", "WJ", "", "D30"),
    _entry("330106-QR-0002", "再生育审批", "07", "WJ", "", ""),
)

DEMO_FONDS = "Z109"  # 全宗号 of the demo district

# The week the demo's matters complete in: every source writer draws its dates from it by default.
DEMO_FIRST_DAY = date(2026, 11, 20)
DEMO_DAYS = 6


def entries_of(source: str) -> list[CatalogueEntry]:
    """The catalogue entries whose matters `source` ("unified", "tzxm", "sjjc") produces, in order."""
    return [e for e in DEMO_CATALOGUE if e.source == source]
