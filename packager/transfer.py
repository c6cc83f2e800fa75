"""A nightly transfer batch (移交) after DA/T 93: 说明文件.txt, 目录文件.xml and the
电子档案移交与接收登记表 (as XML for machines and as a printable HTML page for the signatures).

The batch is described by per-package summary rows that the flow already holds (from the ledger),
so writing it reads no package again. Like the package itself, a batch is a pure function of its
inputs (`created_at` is passed in), so a re-written batch is byte-identical.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from schemas import layout
from schemas.anchor import Checkpoint, readme_line
from schemas.config import Fonds
from schemas.findings import Finding, GuidangError
from schemas.masking import shown_text
from schemas.metadata import zoned_time
from schemas.xmlio import validate_xml

CATALOGUE_FILE = "目录文件.xml"
README_FILE = "说明文件.txt"
REGISTER_XML_FILE = "电子档案移交与接收登记表.xml"
REGISTER_HTML_FILE = "电子档案移交与接收登记表.html"
CATALOGUE_XSD = "catalogue.xsd"
REGISTER_XSD = "transfer_register.xsd"
DIGEST_ALGORITHMS = ("SM3", "SHA-256")
_PERIOD_LABELS = {"Y": "永久", "D30": "30年", "D10": "10年"}
# What 文件数 and 字节数 count, said in the 说明文件 and the 登记表: the documents, as 元数据.xml's
# 件数 and 总字节数 count them, not the package's own files.
_BYTES_COVER = (
    f"计各件所含文档（与{layout.METADATA_FILE}的件数、总字节数一致），不含{layout.METADATA_FILE}、{layout.MANIFEST_SM3}、"
    f"{layout.MANIFEST_SHA256}、{layout.CHECK_REPORT_FILE}和{layout.COMPLETION_MARKER}"
)


@dataclass(frozen=True, slots=True)
class TransferRow:
    """One package of the batch, as the catalogue and the register list it."""

    archival_code: str  # 档号
    responsible: str  # 责任者
    title: str  # 题名
    date: str  # 日期 YYYYMMDD
    period: str  # 保管期限 code: Y / D30 / D10
    security_class: str = "公开"  # 密级
    pages: int = 0  # 页数
    remarks: str = ""  # 备注
    bytes: int = 0  # 字节数: the documents' bytes (元数据's 总字节数)
    file_count: int = 0  # 文件数: the documents (元数据's 件数), not 元数据.xml, manifests, 检测报告
    check_passed: bool = True

    @classmethod
    def coerce(cls, row: TransferRow | Mapping[str, Any]) -> TransferRow:
        if isinstance(row, TransferRow):
            return row
        names = {f.name for f in fields(cls)}
        unknown = set(row) - names
        if unknown:
            raise GuidangError(f"transfer row {row.get('archival_code')!r}: unknown fields {sorted(unknown)}")
        return cls(**row)


def _gb(n: int) -> str:
    return f"{n / 1_000_000_000:.3f}"


def _catalogue(batch_id: str, fonds: Fonds, rows: list[TransferRow]) -> bytes:
    root = etree.Element("目录文件", {"批次号": batch_id, "全宗号": fonds.code})
    for i, r in enumerate(rows, start=1):
        e = etree.SubElement(root, "条目")
        for name, value in (
            ("顺序号", i), ("档号", r.archival_code), ("责任者", shown_text(r.responsible)),
            ("题名", shown_text(r.title)), ("日期", r.date), ("保管期限", _PERIOD_LABELS.get(r.period, r.period)),
            ("密级", r.security_class), ("页数", r.pages), ("备注", shown_text(r.remarks)),
        ):
            etree.SubElement(e, name).text = str(value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _totals(rows: list[TransferRow]) -> dict[str, int]:
    return {
        "packages": len(rows),
        "files": sum(r.file_count for r in rows),
        "bytes": sum(r.bytes for r in rows),
        "pages": sum(r.pages for r in rows),
        "passed": sum(1 for r in rows if r.check_passed),
        "failed": sum(1 for r in rows if not r.check_passed),
    }


def _register(batch_id: str, fonds: Fonds, rows: list[TransferRow], created_at: datetime,
              anchor: Checkpoint | None = None) -> bytes:
    t = _totals(rows)
    root = etree.Element("电子档案移交与接收登记表", {"批次号": batch_id})
    for name, value in (
        ("交接工作名称", f"{fonds.name}电子档案移交（批次 {batch_id}）"),
        ("全宗号", fonds.code),
        ("移交单位", fonds.name),
        ("移交时间", zoned_time(created_at, "移交时间")),
        ("内容描述", f"政务服务事项办件归档信息包 {t['packages']} 件"),
        ("移交电子档案数量", t["packages"]),
        ("电子文件数量", t["files"]),
        ("总页数", t["pages"]),
        ("移交数据量", _gb(t["bytes"])),
        ("字节数", t["bytes"]),
    ):
        etree.SubElement(root, name).text = str(value)
    for algorithm in DIGEST_ALGORITHMS:
        etree.SubElement(root, "摘要算法").text = algorithm
    check = etree.SubElement(root, "检测结果")
    etree.SubElement(check, "检测依据").text = "DA/T 70 四性检测（真实性、完整性、可用性、安全性）"
    etree.SubElement(check, "通过件数").text = str(t["passed"])
    etree.SubElement(check, "未通过件数").text = str(t["failed"])
    etree.SubElement(check, "结论").text = "合格" if t["failed"] == 0 else "不合格"
    if anchor is not None:
        a = etree.SubElement(root, "账本检查点")
        for name, value in (("事件序号", anchor.seq), ("事件摘要", anchor.hash), ("记录时间", anchor.at),
                            ("运行标识", anchor.run_id or "-")):
            etree.SubElement(a, name).text = str(value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _readme(batch_id: str, fonds: Fonds, rows: list[TransferRow], created_at: datetime,
            anchor: Checkpoint | None = None) -> str:
    t = _totals(rows)
    codes = [r.archival_code for r in rows]
    return "\n".join([
        "说明文件",
        f"批次号：{batch_id}",
        f"全宗：{fonds.code} {fonds.name}",
        f"形成时间：{zoned_time(created_at, '形成时间')}",
        f"内容：政务服务事项办件归档信息包（件级），共 {t['packages']} 件，电子文件 {t['files']} 个，"
        f"{t['pages']} 页，{t['bytes']} 字节（{_gb(t['bytes'])} GB）",
        f"电子文件数与字节数：{_BYTES_COVER}",
        f"档号范围：{min(codes)} 至 {max(codes)}" if codes else "档号范围：无",
        f"信息包结构：<档号>/{layout.METADATA_FILE}、{'/、'.join(layout.GROUP_FOLDERS)}/、{layout.MANIFEST_SM3}、{layout.MANIFEST_SHA256}、"
        f"{layout.CHECK_REPORT_FILE}、{layout.COMPLETION_MARKER}",
        f"固化信息：{'、'.join(DIGEST_ALGORITHMS)} 摘要清单（{layout.MANIFEST_SM3}、{layout.MANIFEST_SHA256}）",
        f"四性检测：通过 {t['passed']} 件，未通过 {t['failed']} 件",
        f"随附文件：{CATALOGUE_FILE}、{REGISTER_XML_FILE}、{REGISTER_HTML_FILE}",
        *([readme_line(anchor)] if anchor is not None else []),
        "",
    ])


# Printed on A4 for the signatures: the listing's header row repeats on every page, a 档号 never
# breaks, rows are not split, page numbers sit in the page margin (CSS paged media, printed by
# Chromium-based browsers and PDF renderers; others print without them), and the signature block
# follows the list so that what is signed is what is listed above it.
PRINT_CSS = """
@page { size: A4; margin: 15mm 12mm 18mm 12mm;
  @bottom-center { content: "第 " counter(page) " 页 / 共 " counter(pages) " 页"; font-size: 9pt; } }
body { font-family: "SimSun", "Songti SC", serif; font-size: 10.5pt; margin: 0 auto; max-width: 186mm; }
h1 { font-size: 16pt; text-align: center; margin: 0 0 4mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #000; padding: 2px 4px; text-align: left; vertical-align: top; }
thead { display: table-header-group; }
.listing { font-size: 9pt; }
.listing th, .summary th { white-space: nowrap; }  /* a header never breaks a character per line */
tfoot { display: table-row-group; }  /* the totals once, after the last row, not on every page */
tr { break-inside: avoid; page-break-inside: avoid; }
.code { white-space: nowrap; }
.num { text-align: right; white-space: nowrap; }
.signatures { break-inside: avoid; page-break-inside: avoid; margin-top: 6mm; }
.signatures td { height: 12mm; width: 35%; }
"""


def _html(batch_id: str, fonds: Fonds, rows: list[TransferRow], created_at: datetime,
          anchor: Checkpoint | None = None) -> str:
    t = _totals(rows)
    e = html.escape
    cells = [
        ("交接工作名称", f"{fonds.name}电子档案移交（批次 {batch_id}）"),
        ("内容描述", f"政务服务事项办件归档信息包 {t['packages']} 件"),
        ("移交电子档案数量", f"{t['packages']} 件（电子文件 {t['files']} 个，{t['pages']} 页）"),
        ("移交数据量", f"{_gb(t['bytes'])} GB（{t['bytes']} 字节，{_BYTES_COVER}）"),
        ("摘要算法", "、".join(DIGEST_ALGORITHMS)),
        ("四性检测结果", f"通过 {t['passed']} 件，未通过 {t['failed']} 件"),
        ("移交时间", zoned_time(created_at, "移交时间")),
        *([("账本检查点", readme_line(anchor).split("：", 1)[1])] if anchor is not None else []),
    ]
    summary = "\n".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in cells)
    listing = "\n".join(
        f"<tr><td class=\"num\">{i}</td><td class=\"code\">{e(r.archival_code)}</td><td>{e(shown_text(r.title))}</td>"
        f"<td class=\"num\">{r.file_count}</td><td class=\"num\">{r.bytes}</td>"
        f"<td class=\"code\">{e(_PERIOD_LABELS.get(r.period, r.period))}</td>"
        f"<td class=\"code\">{'通过' if r.check_passed else '未通过'}</td></tr>"
        for i, r in enumerate(rows, start=1)
    )
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>电子档案移交与接收登记表 {e(batch_id)}</title>
<style>{PRINT_CSS}</style></head>
<body><h1>电子档案移交与接收登记表</h1>
<p>全宗：{e(fonds.code)} {e(fonds.name)}　批次号：<span class="code">{e(batch_id)}</span></p>
<table class="summary">
{summary}
</table>
<h2>移交清单</h2>
<table class="listing">
<thead><tr><th>顺序号</th><th>档号</th><th>题名</th><th>文件数</th><th>字节数</th><th>保管期限</th><th>四性检测</th></tr></thead>
<tbody>
{listing}
</tbody>
<tfoot><tr><th colspan="3">合计 {t['packages']} 件</th><th class="num">{t['files']}</th>
<th class="num">{t['bytes']}</th><th></th><th>通过 {t['passed']}，未通过 {t['failed']}</th></tr></tfoot>
</table>
<table class="signatures">
<tr><th></th><th>移交单位</th><th>接收单位</th></tr>
<tr><th>单位名称</th><td>{e(fonds.name)}</td><td></td></tr>
<tr><th>移交人 / 接收人（签名）</th><td></td><td></td></tr>
<tr><th>审核人（签名）</th><td></td><td></td></tr>
<tr><th>日期</th><td></td><td></td></tr>
</table>
</body></html>
"""


def write_transfer_batch(
    out_dir: Path,
    *,
    batch_id: str,
    fonds: Fonds,
    packages: Sequence[TransferRow | Mapping[str, Any]],
    created_at: datetime,
    anchor: Checkpoint | None = None,
) -> list[Path]:
    """Write the batch's four files into `out_dir` (created if needed), rows in 档号 order; both
    XML files are validated against their XSDs before anything is written. `anchor`, the ledger's
    event that began the batch, goes into the 说明文件 and both 登记表 forms (the audit's checkpoint)."""
    rows = sorted((TransferRow.coerce(p) for p in packages), key=lambda r: r.archival_code)
    dup = sorted(code for code, n in Counter(r.archival_code for r in rows).items() if n > 1)
    if dup:
        raise GuidangError(f"transfer batch {batch_id}: 档号 listed twice: {', '.join(dup)}")
    catalogue = _catalogue(batch_id, fonds, rows)
    register = _register(batch_id, fonds, rows, created_at, anchor)
    problems: list[Finding] = [
        *validate_xml(catalogue, CATALOGUE_XSD, code="TRANSFER-INVALID", where=CATALOGUE_FILE),
        *validate_xml(register, REGISTER_XSD, code="TRANSFER-INVALID", where=REGISTER_XML_FILE),
    ]
    if problems:
        raise GuidangError(f"transfer batch {batch_id}: output does not validate", problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in (
        (README_FILE, _readme(batch_id, fonds, rows, created_at, anchor).encode("utf-8")),
        (CATALOGUE_FILE, catalogue),
        (REGISTER_XML_FILE, register),
        (REGISTER_HTML_FILE, _html(batch_id, fonds, rows, created_at, anchor).encode("utf-8")),
    ):
        (out_dir / name).write_bytes(data)
        written.append(out_dir / name)
    return written
