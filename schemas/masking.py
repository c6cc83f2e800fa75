"""The one masker of personal data (个人信息) and the one escaper of control characters in shown text.

Every text a person reads (logs, run summaries, `quarantine list` / `show`, due lists, registers,
the batch's 目录文件 and 登记表) passes through `mask_text`, so a shape it misses is missed
everywhere and one fix covers every output. Identifiers are found by shape on a copy of the text
in which full-width digits and letters (０-９, Ｘ) are folded to ASCII one character for one, so
the positions found are the positions in the original.

Source values are also untrusted text: a 办件编号 holding a newline and a formatted log line
would forge a log record, and ESC sequences would drive the operator's terminal. `escape_controls`
shows such characters as escapes, and the logging filter applies both to every record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

# Full-width digits and Latin letters, the ideographic space and the full-width hyphen -> ASCII,
# one character for one (str.translate keeps every index).
_FOLD = str.maketrans(
    {**{chr(0xFF10 + i): chr(0x30 + i) for i in range(10)},
     **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
     **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
     "\u3000": " ", "\uff0d": "-"}
)
_CREDIT_CHAR = "[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]"  # GB 32100: digits and letters but I O Z S V
_PERSONAL_RE = re.compile(
    "(?:"
    # 居民身份证号码 (GB 11643): letters may touch it (ID330106…), digits may not.
    # Written in groups too (330106 19900101 1234, 3301 0619 9001 0112 34): 18 characters with at
    # most one space or hyphen between two of them.
    r"(?<![0-9])(?P<id18>[0-9](?:[ -]?[0-9]){16}[ -]?[0-9Xx](?![0-9A-Za-z]))"
    # 统一社会信用代码: 登记管理部门 + 类别 (2), 区划 (6), 主体标识 + 校验 (10); any case.
    + f"|(?<![0-9A-Za-z])(?P<credit>{_CREDIT_CHAR}{{2}}[0-9]{{6}}{_CREDIT_CHAR}{{10}})(?![0-9A-Za-z])"
    # the old 15-digit 身份证号码
    + r"|(?<![0-9])(?P<id15>[0-9]{8}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3})(?![0-9])"
    # 手机号码, with +86 or not, in groups of 3-4-4 or not
    + r"|(?<![0-9])(?:\+?86[- ]?)?(?P<mobile>1[3-9][0-9](?P<msep>[- ]?)[0-9]{4}(?P=msep)[0-9]{4})(?![0-9])"
    + ")"
)
# C0 and C1 controls, DEL, and the invisible characters that reorder or hide text: the
# bidirectional embeddings, overrides and isolates, LRM/RLM, the line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def mask_id(card_number: str | None) -> str | None:
    """Keep the first 6 and last 4 characters of an identity number: enough for an operator to tell
    two applicants apart in a log, not enough to identify a person."""
    if not card_number:
        return card_number
    s = card_number.strip()
    if len(s) <= 8:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


def _masked(original: str, m: re.Match[str]) -> str:
    found = original[m.start():m.end()]
    if m.group("mobile") is None:
        return mask_id(found) or ""
    start = m.start("mobile") - m.start()
    digits = found[start:]
    return found[:start] + digits[:3] + "".join("*" if c.isdigit() else c for c in digits[3:-4]) + digits[-4:]


def mask_text(text: str) -> str:
    """Mask every identity number (18 digits, spaced 6-8-4, 15 digits), 统一社会信用代码 and mobile
    number in free text, in full-width or ASCII, touching Chinese characters, letters, URLs or
    file names: the first 6 and last 4 characters are kept (a mobile number keeps 3 and 4)."""
    if not text:
        return text
    folded = text.translate(_FOLD)
    out: list[str] = []
    last = 0
    for m in _PERSONAL_RE.finditer(folded):
        out.append(text[last:m.start()])
        out.append(_masked(text, m))
        last = m.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def escape_controls(text: str) -> str:
    """Control, bidirectional and line-separating characters shown as escapes (`\\n`, `\\x1b`,
    `\\u202e`), so a value prints on one line, as written, and cannot steer the terminal."""
    if not text:
        return text
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return _CONTROLS.sub(_escape, text)


def shown_text(text: str) -> str:
    """A text as a person may see it: masked and escaped."""
    return escape_controls(mask_text(text))


def log_safe(text: str) -> str:
    """A log message masked and escaped, except that its own line breaks stay, each followed by an
    indent: a message of several lines remains readable, and no line of it can pass for a record."""
    first, *rest = [escape_controls(mask_text(line)) for line in text.split("\n")]
    return "\n".join([first, *(line if line.startswith("    ") else "    " + line for line in rest)])


def _one_line(value: object) -> object:
    """A log argument with its control characters escaped: text and errors (whose message may
    quote a source value); anything else keeps its type, for %d and %r."""
    if isinstance(value, str):
        return escape_controls(value)
    if isinstance(value, BaseException):
        return escape_controls(str(value))
    return value


class MaskingFilter(logging.Filter):
    """Masks and escapes a log record in place (its message, traceback and stack), so that no call
    site can forget: attached to guidang's loggers and to the handlers that show or ship logs (the
    terminal, Prefect's API handler). Always lets the record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            if record.args:  # the values put into the message may not break its line: escape them fully
                args = record.args
                safe = ({k: _one_line(v) for k, v in args.items()} if isinstance(args, Mapping)
                        else tuple(_one_line(a) for a in args))
                message = str(record.msg) % safe
        except Exception:  # a bad format string: let logging report it as it always does
            return True
        record.msg, record.args = log_safe(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
