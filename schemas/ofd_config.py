"""The `ofd:` section of guidang.yaml, a module of its own beside schemas/config.py because the
standard faces are a list of configuration data an archivist reviews, not code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Faces OFD readers provide or substitute without loss, so a document need not embed them: the
# GB/T 9704 公文 faces (title 方正小标宋简体/小标宋体, body 仿宋_GB2312, 楷体_GB2312, 黑体), the Windows and
# Founder Chinese faces producers name, and the Latin faces of every reader.
DEFAULT_STANDARD_FONTS: tuple[str, ...] = (
    "方正小标宋简体", "方正小标宋_GBK", "小标宋体", "小标宋", "仿宋_GB2312", "楷体_GB2312", "黑体", "宋体",
    "仿宋", "楷体", "新宋体", "微软雅黑", "华文中宋", "华文仿宋", "华文楷体",
    "方正书宋简体", "方正仿宋简体", "方正楷体简体", "方正黑体简体",
    "方正书宋_GBK", "方正仿宋_GBK", "方正楷体_GBK", "方正黑体_GBK", "方正书宋", "方正黑体", "方正楷体", "方正仿宋",
    "宋体-方正超大字符集", "SimSun", "NSimSun", "SimHei", "KaiTi", "FangSong", "KaiTi_GB2312", "FangSong_GB2312",
    "STSong", "STFangsong", "STKaiti", "STZhongsong", "Microsoft YaHei", "FZXiaoBiaoSong-B05S",
    "TimesNewRomanPSMT", "Times New Roman", "Times-Roman", "Times", "Tahoma", "Arial", "ArialMT", "Helvetica",
    "Courier", "Courier New", "CourierNewPSMT", "Symbol", "Calibri", "Verdana",
)


class OfdConfig(BaseModel):
    """OFD documents (GB/T 33190): which fonts need not be embedded and how much one OFD may make
    the night do (a hostile container is stopped at these limits and quarantined, naming the part)."""

    model_config = ConfigDict(extra="forbid")

    standard_fonts: list[str] = Field(default_factory=lambda: list(DEFAULT_STANDARD_FONTS),
                                      description="font names readers provide (matched ignoring case); a font "
                                      "neither embedded nor listed is a warning (W-OFD-FONT-NOT-EMBEDDED)")
    require_embedded_fonts: bool = Field(default=False, description="true: a font neither embedded nor standard "
                                         "quarantines the document (Q-OFD-INVALID) instead of being a warning")
    max_pages: int = Field(default=5000, ge=1, description="most pages one OFD may list")
    max_signature_references: int = Field(default=2000, ge=1, description="most files one signature's "
                                          "References may list")
    max_signatures: int = Field(default=100, ge=1, description="most signatures one OFD may list")
    max_decompressed_mb: int = Field(default=1024, ge=1, description="most MiB decompressed while inspecting "
                                     "one OFD (pages parsed, signed files digested)")
