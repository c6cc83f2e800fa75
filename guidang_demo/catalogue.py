"""The demo world's matter-type catalogue (事项目录), shared by every simulated source.

One list so that the unified simulator's catalogue endpoint, the self-built systems' data and the
demo retention workbook agree on codes, names, 事项类型 and 实施机构 without copying each other.
`retention` says what the demo workbook does with the type: a period, 不归档, or no rule at all
(so that coverage and quarantine have something to show).
"""

from __future__ import annotations

from dataclasses import dataclass


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


DEMO_CATALOGUE: tuple[CatalogueEntry, ...] = (
    # unified system (政务服务网统建系统)
    CatalogueEntry(
        "330106-XK-0001", "食品经营许可", "01", "西湖区市场监督管理局", "11330106MB0001", "unified", "D30", "SJ"
    ),
    CatalogueEntry(
        "330106-XK-0002", "药品零售企业许可", "01", "西湖区市场监督管理局", "11330106MB0001", "unified", "D30", "SJ"
    ),
    CatalogueEntry(
        "330106-XK-0003", "建筑工程施工许可", "01", "西湖区住房和城乡建设局", "11330106MB0003", "unified", "Y", "ZJ"
    ),
    CatalogueEntry(
        "330106-QR-0001", "个体工商户设立登记", "07", "西湖区市场监督管理局", "11330106MB0001", "unified", "D10", "SJ"
    ),
    CatalogueEntry(
        "330106-JF-0001", "最低生活保障金给付", "05", "西湖区民政局", "11330106MB0004", "unified", "D30", "MZ"
    ),
    CatalogueEntry(
        "330106-CF-0001",
        "对未取得食品经营许可从事食品经营活动的处罚",
        "02",
        "西湖区市场监督管理局",
        "11330106MB0001",
        "unified",
        "Y",
        "SJ",
    ),
    CatalogueEntry(
        "330106-GG-0001", "婚姻登记档案查询", "20", "西湖区民政局", "11330106MB0004", "unified", "不归档", "MZ"
    ),
    CatalogueEntry(
        "330106-QT-0001", "职业技能等级认定", "10", "西湖区人力资源和社会保障局", "11330106MB0005", "unified", "", "RS"
    ),
    # self-built: investment-project approval platform (投资项目在线审批监管平台)
    CatalogueEntry(
        "330106-XK-0101", "企业投资项目核准", "01", "西湖区发展和改革局", "11330106MB0006", "tzxm", "Y", "FG"
    ),
    CatalogueEntry(
        "330106-QT-0102", "企业投资项目备案", "10", "西湖区发展和改革局", "11330106MB0006", "tzxm", "D30", "FG"
    ),
    # self-built: 双随机 random-inspection system
    CatalogueEntry(
        "330106-JC-0201",
        "食品生产经营日常监督检查",
        "06",
        "西湖区市场监督管理局",
        "11330106MB0001",
        "sjjc",
        "D10",
        "SJ",
    ),
    CatalogueEntry(
        "330106-JC-0202", "排污单位监督检查", "06", "杭州市生态环境局西湖分局", "11330106MB0007", "sjjc", "D30", "HB"
    ),
    # in the catalogue only: no matters in the demo data (coverage reports those without a rule)
    CatalogueEntry("330106-XK-0004", "公共场所卫生许可", "01", "西湖区卫生健康局", "11330106MB0008", "", "D30", "WJ"),
    CatalogueEntry("330106-QR-0002", "再生育审批", "07", "西湖区卫生健康局", "11330106MB0008", "", "", "WJ"),
)

DEMO_FONDS = "Z109"  # 全宗号 of the demo district
