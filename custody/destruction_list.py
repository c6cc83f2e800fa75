"""The 销毁清单 (list of records to destroy) of an approved appraisal, on A4 for signing.

The DA/T fields per record (档号, 题名, 日期, 保管期限, 页数, the reason), the appraisers and the
approver by name, and signature lines for the 鉴定小组, the approver and the supervisors of the
destruction (监销人). As an HTML page it prints from any browser on A4 (the register's print CSS);
as a PDF it is A4 already, for the file. It is written after approval and before the destruction,
and kept with the catalogue permanently.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger import disposition_rules
from ledger.store import Ledger
from packager.transfer import PRINT_CSS
from schemas.findings import GuidangError
from schemas.model import RetentionPeriod, mask_text

HEADERS = ("序号", "档号", "题名", "日期", "保管期限", "页数", "销毁理由", "鉴定人", "状态")


@dataclass(frozen=True, slots=True)
class DestructionList:
    review: int
    before: str
    opened_by: str
    approved_by: str | None
    approved_at: str | None
    rows: list[dict[str, Any]]

    @property
    def appraisers(self) -> list[str]:
        return sorted({r["鉴定人"] for r in self.rows if r["鉴定人"]} | {self.opened_by})


def gather(ledger: Ledger, review_id: int) -> DestructionList:
    """The review's records decided for destruction, in 档号 order, with their row's facts."""
    with ledger.read() as s:
        rv = disposition_rules.review(s, review_id)
        chosen = [i for i in disposition_rules.items(s, review_id) if i.decision == "destroy"]
        recs = {r.archival_code: r for r in disposition_rules.records_by_codes(s, [i.archival_code for i in chosen])}
        rows = []
        for n, i in enumerate(chosen, 1):
            r = recs.get(i.archival_code)
            period = RetentionPeriod(r.retention_period).label if r is not None and r.retention_period else ""
            rows.append({"序号": n, "档号": i.archival_code, "题名": (r.title or r.service_name) if r else "",
                         "日期": r.completed_at.date().isoformat() if r else "", "保管期限": period,
                         "页数": r.page_count if r is not None and r.page_count is not None else "",
                         "销毁理由": i.reason or "", "鉴定人": i.decided_by or "",
                         "状态": {"destroyed": "已销毁", "blocked": "暂缓"}.get(i.outcome or "", "待销毁")})
        return DestructionList(rv.id, rv.before, rv.opened_by, rv.approved_by,
                               rv.approved_at.date().isoformat() if rv.approved_at else None, rows)


def write_html(data: DestructionList, path: Path) -> None:
    e = html.escape
    body = "\n".join(
        "<tr>" + "".join(f"<td class=\"{'num' if h in ('序号', '页数') else ('code' if h == '档号' else '')}\">"
                         f"{e(mask_text(str(row[h])))}</td>" for h in HEADERS) + "</tr>"
        for row in data.rows)
    approved = f"{data.approved_by}（{data.approved_at}）" if data.approved_by else "未审批"
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>档案销毁清单 鉴定 {data.review}</title>
<style>{PRINT_CSS}</style></head>
<body><h1>档案销毁清单</h1>
<p>鉴定编号：{data.review}　到期日期早于：{e(data.before)}　共 {len(data.rows)} 件</p>
<p>鉴定人：{e("、".join(data.appraisers))}　审批人：{e(approved)}</p>
<table class="listing">
<thead><tr>{''.join(f'<th>{h}</th>' for h in HEADERS)}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<table class="signatures">
<tr><th>鉴定小组（签字）</th><td></td><th>日期</th><td></td></tr>
<tr><th>审批人（签字）</th><td></td><th>日期</th><td></td></tr>
<tr><th>监销人（签字）</th><td></td><th>日期</th><td></td></tr>
</table>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


CJK_FONTS = (  # Debian's packages: fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
WIDTHS = (8, 38, 42, 18, 15, 9, 28, 14, 14)  # mm, summing to A4's 186 mm between 12 mm margins


class NoCjkFont(GuidangError):
    """No font with Chinese glyphs to write the PDF with: the HTML page prints the same list."""


def cjk_font() -> Path:
    for candidate in CJK_FONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise NoCjkFont("no Chinese font for the PDF (install Debian's fonts-wqy-microhei); "
                    "the --html page prints the same list on A4")


def write_pdf(data: DestructionList, path: Path, *, font: Path | None = None) -> int:
    """The same 销毁清单 as a PDF on A4 (fpdf2, already a dependency, with a system CJK font);
    returns the number of pages."""
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(12, 15, 12)
    pdf.set_auto_page_break(True, margin=18)
    face = str(font or cjk_font())
    pdf.add_font("cjk", fname=face)
    pdf.add_font("cjk", style="B", fname=face)  # table headings are bold; one face serves both
    pdf.set_title(f"档案销毁清单 鉴定 {data.review}")
    pdf.add_page()
    pdf.set_font("cjk", size=16)
    pdf.cell(0, 10, text="档案销毁清单", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    approved = f"{data.approved_by}（{data.approved_at}）" if data.approved_by else "未审批"
    for line in (f"鉴定编号：{data.review}　到期日期早于：{data.before}　共 {len(data.rows)} 件",
                 f"鉴定人：{'、'.join(data.appraisers)}　审批人：{approved}"):
        pdf.cell(0, 7, text=mask_text(line), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    with pdf.table(col_widths=WIDTHS, text_align="LEFT", line_height=4.5, repeat_headings=1) as table:
        table.row(list(HEADERS))
        for row in data.rows:
            table.row([mask_text(str(row[h])) for h in HEADERS])
    pdf.ln(8)
    pdf.set_font("cjk", size=10)
    with pdf.table(col_widths=(40, 53, 20, 73), line_height=10) as signatures:
        for who in ("鉴定小组（签字）", "审批人（签字）", "监销人（签字）"):
            signatures.row([who, "", "日期", ""])
    pdf.output(str(path))
    return pdf.pages_count
