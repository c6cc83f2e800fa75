"""利用件: the access copy of an archived PDF, as a reading room hands it out. The original's first page
gets the 归档章 (DA/T 22: 全宗号, 年度, 件号 above 机构或问题, 保管期限, 页数) at its top right, and every
page a watermark naming who asked for it and when, so that a copy found outside can be traced back to
a view recorded in the ledger's chain. The original in the archive is never touched: the copy is made
from a verified local copy of it into a new file.

The stamp and the watermark are real text (a CJK font embedded by fpdf2), drawn on an overlay page
that pypdf merges onto each page: a reader can search and copy them, and so can a test. The font is
found by path at run time (Debian's fonts-wqy-microhei or fonts-wqy-zenhei, Noto CJK); without one
the copy cannot be made and AccessCopyError says which package to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.findings import GuidangError

if TYPE_CHECKING:
    from fpdf import FPDF

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
PERIOD_LABELS = {"Y": "永久", "D30": "30年", "D10": "10年"}  # 保管期限 codes as a stamp spells them
CELL_W, CELL_H, MARGIN = 58.0, 26.0, 18.0  # points: a 归档章 of 3 x 2 cells, 18 pt from the corner


class AccessCopyError(GuidangError):
    """No access copy can be made: no CJK font on the machine, or the PDF cannot be read."""


@dataclass(frozen=True)
class ArchiveStamp:
    """归档章: what DA/T 22 puts in its six cells."""

    fonds: str  # 全宗号
    year: str  # 年度
    item: str  # 件号
    org: str  # 机构或问题
    period: str  # 保管期限
    pages: str  # 页数

    def cells(self) -> list[tuple[str, str]]:
        return [("全宗号", self.fonds), ("年度", self.year), ("件号", self.item),
                ("机构或问题", self.org), ("保管期限", PERIOD_LABELS.get(self.period, self.period)),
                ("页数", self.pages)]


def cjk_font() -> Path:
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    raise AccessCopyError("没有可用的中文字体，无法生成利用件：请安装 Debian 软件包 fonts-wqy-microhei "
                          f"（查找过 {', '.join(str(p) for p in FONT_CANDIDATES)}）")


def _overlays(keys: list[tuple[float, float, bool]], stamp: ArchiveStamp, watermark: str, font: Path) -> bytes:
    """One overlay page per (width, height, first page?) in `keys`, in one PDF so that the font is
    subset and embedded once: the watermark on each, the stamp on the first page's."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_font("cjk", fname=str(font))
    for width, height, first in keys:
        pdf.add_page(format=(width, height))
        _watermark(pdf, width, height, watermark)
        if first:
            _stamp(pdf, width, stamp)
    return bytes(pdf.output())


def _watermark(pdf: FPDF, width: float, height: float, watermark: str) -> None:
    with pdf.local_context(fill_opacity=0.18, text_color=(120, 120, 120)):
        pdf.set_font("cjk", size=max(12.0, min(width, height) / 28))
        for k in range(3):  # across the page, rotated: hard to cut out of a scan
            x, y = width * (0.12 + 0.3 * k), height * (0.35 + 0.25 * k)
            with pdf.rotation(30, x=x, y=y):
                pdf.text(x, y, watermark)
    pdf.set_font("cjk", size=7)
    pdf.set_text_color(90, 90, 90)
    pdf.text(MARGIN, height - MARGIN / 2, watermark)  # straight, once: what a reader's search finds


def _stamp(pdf: FPDF, width: float, stamp: ArchiveStamp) -> None:
    left, top = width - MARGIN - 3 * CELL_W, MARGIN
    pdf.set_draw_color(200, 0, 0)
    pdf.set_text_color(200, 0, 0)
    pdf.set_line_width(0.8)
    pdf.set_font("cjk", size=6)
    pdf.text(left, top - 3, "归档章")
    for i, (label, value) in enumerate(stamp.cells()):
        x, y = left + (i % 3) * CELL_W, top + (i // 3) * CELL_H
        pdf.rect(x, y, CELL_W, CELL_H)
        pdf.set_font("cjk", size=5.5)
        pdf.text(x + 2, y + 7, label)
        pdf.set_font("cjk", size=8.5 if len(value) <= 9 else 6.5)
        pdf.text(x + 2, y + CELL_H - 5, value[:14])


def make_access_copy(original: Path, out: Path, stamp: ArchiveStamp, watermark: str) -> int:
    """Write to `out` the access copy of the PDF at `original`; returns its page count."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PdfReadError

    font = cjk_font()
    try:
        reader = PdfReader(str(original))
        if reader.is_encrypted:
            raise AccessCopyError(f"{original.name}: 加密的 PDF 不能加盖归档章，只能下载原件")
        writer = PdfWriter()
        keys = [(float(p.mediabox.width), float(p.mediabox.height), n == 0) for n, p in enumerate(reader.pages)]
        distinct = list(dict.fromkeys(keys))
        made = PdfReader(BytesIO(_overlays(distinct, stamp, watermark, font))).pages
        overlays = {k: made[i] for i, k in enumerate(distinct)}
        for page, key in zip(reader.pages, keys, strict=True):
            box = page.mediabox
            over = overlays[key]
            copy = writer.add_page(page)  # merged on the writer's copy: the reader's pages stay as read
            if float(box.left) or float(box.bottom):  # a box not at the origin: move the overlay with it
                from pypdf import Transformation

                copy.merge_transformed_page(over, Transformation().translate(float(box.left), float(box.bottom)))
            else:
                copy.merge_page(over)  # type: ignore[arg-type]
        with out.open("wb") as fh:
            writer.write(fh)
        return len(reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise AccessCopyError(f"{original.name}: PDF 无法读取，不能生成利用件（{exc.__class__.__name__}）") from exc
