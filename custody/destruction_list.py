"""The 销毁清单 (list of records to destroy) of an approved appraisal, on A4 for signing.

The DA/T fields per record (档号, 题名, 日期, 保管期限, 页数, the reason), the appraisers and the
approver by name, and signature lines for the 鉴定小组, the approver and the supervisors of the
destruction (监销人). It prints from any browser on A4 (the register's print CSS); it is written
after approval and before the destruction, and kept with the catalogue permanently.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger import disposition as ledger_disposition
from ledger.store import Ledger
from packager.transfer import PRINT_CSS
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
        rv = ledger_disposition.review(s, review_id)
        chosen = [i for i in ledger_disposition.items(s, review_id) if i.decision == "destroy"]
        recs = {r.archival_code: r for r in ledger_disposition.records_by_codes(s, [i.archival_code for i in chosen])}
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
