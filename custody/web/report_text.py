"""The 检测报告's 说明 in Chinese on the 档案 page. A package's 检测报告.xml is stored as it was written
and never changes; its per-item records are short English sentences of a known shape, so the page
says them in Chinese from this table and keeps anything it does not recognise as written (folded
under 检测记录 beside the item's Chinese name and result)."""

from __future__ import annotations

import re

_NUMBER = r"(\d+)"
# (English record, Chinese), whole-record patterns; \1, \2 are the numbers or names carried over
_PATTERNS: list[tuple[str, str]] = [
    (rf"{_NUMBER} document\(s\) match the source digests", r"\1 个文件与来源系统提供的摘要一致"),
    (rf"{_NUMBER} document\(s\) match the digests recorded in 元数据\.xml", r"\1 个文件与元数据.xml 记录的摘要一致"),
    (rf"{_NUMBER} file\(s\) match both manifests", r"\1 个文件与两份摘要清单一致"),
    (rf"size, format and pages agree for {_NUMBER} document\(s\)", r"\1 个文件的大小、格式与页数一致"),
    (rf"size and format \(pages at full level\) agree for {_NUMBER} document\(s\)",
     r"\1 个文件的大小与格式一致（页数在完整检测时核对）"),
    (r"(\S+) well-formed", r"档号 \1 符合规范"),
    (r"no duplicated entries", "没有重复的元数据项"),
    (rf"{_NUMBER} document\(s\)", r"\1 个文件"),
    (rf"{_NUMBER} bytes", r"\1 字节"),
    (r"all mandatory elements present", "必填元数据项齐全"),
    (r"steps: (.+)", r"办理过程：\1"),
    (rf"{_NUMBER} document\(s\) present", r"\1 个文件俱在"),
    (r"归档, (\S+)", r"归档，保管期限 \1"),
    (r"well-formed and valid against metadata\.xsd", "格式良好，符合 metadata.xsd"),
    (r"元数据\.xml is missing", "缺少元数据.xml"),
    (r"not well-formed", "元数据.xml 格式错误"),
    (r"all documents in general-purpose formats", "所有文件均为通用格式"),
    (rf"{_NUMBER} original\(s\) kept beside their renditions", r"\1 个原件与其转换件一并保存"),
    (rf"{_NUMBER} warning\(s\)", r"\1 条提示（阅读器可容忍，不影响归档）"),
    (rf"{_NUMBER} PDF\(s\) open with their page trees", r"\1 个 PDF 文件可打开，页面树完好"),
    (rf"{_NUMBER} OFD\(s\) resolve to their pages and fonts", r"\1 个 OFD 文件的页面和字体可解析"),
    (rf"{_NUMBER} other document\(s\) not parsed", r"另有 \1 个文件未解析"),
    (rf"no active content in {_NUMBER} PDF\(s\)", r"\1 个 PDF 文件中没有活动内容"),
    (rf"{_NUMBER} file\(s\), none extraneous", r"共 \1 个文件，没有多余文件"),
    (r"no virus scanner configured \(virus_scan in guidang\.yaml\)", "未配置病毒检测（guidang.yaml 的 virus_scan）"),
    (r"scanner unavailable", "病毒检测程序不可用"),
    (r"malware found", "发现恶意代码"),
    (rf"(.+): {_NUMBER} document\(s\) clean", r"\1：\2 个文件未发现病毒"),
    (rf"{_NUMBER} problem\(s\)", r"\1 个问题"),
    (r"元数据\.xml is missing or unreadable \(see GD-3-1\)", "元数据.xml 缺失或无法读取（见 GD-3-1）"),
    (r"quick level: (.+) not performed", r"快速检测：未做\1"),
    (rf"{_NUMBER} signature\(s\): (.+)", r"\1 个签名：\2"),
    (r"no signature", "没有签名"),
]
_COMPILED = [(re.compile(pattern), chinese) for pattern, chinese in _PATTERNS]


def in_chinese(note: str) -> str | None:
    """The record said in Chinese, each `; `-separated part on its own; None if any part is unknown."""
    parts = []
    for part in (p.strip() for p in note.split(";")):
        for pattern, chinese in _COMPILED:
            if pattern.fullmatch(part):
                parts.append(pattern.sub(chinese, part))
                break
        else:
            return None
    return "；".join(parts)
