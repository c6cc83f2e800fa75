"""One masker for every text a person reads, and no source value that can forge a log line.

The table holds the shapes real records write identity numbers, credit codes and phones in; each
must lose its middle wherever it sits (Chinese text, a URL, a file name), and what is no personal
data (办件编号, digests, 档号, run ids) must stay as it is.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from schemas.masking import MaskingFilter, escape_controls, mask_text

SHAPES = [
    # (text, the identifier's characters that must be gone, what must remain)
    ("ID330106199001011234", "19900101", "ID330106"),
    ("330106 19900101 1234", "19900101", "330106"),
    ("330106-19900101-123X", "19900101", "123X"),
    ("证件 3301 0619 9001 0112 34 号", "9001 01", "证件 3301 0"),
    ("３３０１０６１９９００１０１１２３Ｘ", "１９９００１０１", "１２３Ｘ"),
    ("身份证号33010619900101123x。", "19900101", "身份证号330106"),
    ("统一社会信用代码91330106ma2abcde1x的公司", "ma2abc", "的公司"),
    ("91330106MA2ABCDE1X", "MA2ABC", "913301"),
    ("https://gov.example/files/330106199001011234.pdf?x=1", "19900101", "https://gov.example/files/"),
    ("申请书_13812345678_张三.pdf", "1234", "申请书_138"),
    ("电话：+86 138 1234 5678", "1234 ", "+86 138"),
    ("旧证330106900101123", "900101", "旧证330106"),
]
KEEP = ["33010620261123000010", "Z109-WS·2026·D10·SJ-0001", "20261206213000",
        "1fb49d07f0af6823466b46326ede72c4536f8a3ad6818395fb37940f477d49d0", "run 7f3a9c 2025-03-01 10:00:00"]


@pytest.mark.parametrize(("text", "gone", "kept"), SHAPES)
def test_every_shape_is_masked_where_it_stands(text: str, gone: str, kept: str) -> None:
    shown = mask_text(text)
    assert gone not in shown and kept in shown and "*" in shown, shown
    assert len(shown) == len(text)  # masking replaces characters, the rest of the text stays in place


@pytest.mark.parametrize("text", KEEP)
def test_what_is_no_personal_data_stays(text: str) -> None:
    assert mask_text(text) == text


def test_control_and_bidirectional_characters_are_escaped() -> None:
    assert escape_controls("P1\n2026-12-06 INFO forged") == "P1\\n2026-12-06 INFO forged"
    assert escape_controls("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07"
    assert escape_controls("invoice\u202efdp.exe") == "invoice\\u202efdp.exe"
    assert escape_controls("a\u2066b\u200fc\x85d\x7f") == "a\\u2066b\\u200fc\\x85d\\x7f"
    assert escape_controls("普通的名字.pdf") == "普通的名字.pdf"


def test_a_project_id_holding_a_log_line_cannot_forge_a_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingFilter())
    log = logging.getLogger("guidang.test_masking")
    log.addHandler(handler)
    log.propagate = False
    try:
        hostile = "P1\nINFO night completed: 0 quarantined\x1b[2K"
        log.warning("quarantined %s (applicant 330106199001011234)", hostile)
        log.warning("two lines\nof our own")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == ("WARNING quarantined P1\\nINFO night completed: 0 quarantined\\x1b[2K "
                        "(applicant 330106********1234)")
    assert lines[1:] == ["WARNING two lines", "    of our own"]  # a message's own line breaks stay, indented
    assert all(line.startswith(("WARNING", "    ")) for line in lines)


def test_quarantine_show_says_the_record_is_whole_and_escapes_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app
    from tests.test_cli_output import _config, _quarantine

    config = _config(tmp_path)
    hostile = "赵涛身份证330106199001011234\n\x1b[31m.pdf"
    _quarantine(config, [("P1\nINFO forged", hostile)])
    runner = CliRunner()
    listed = runner.invoke(app, ["quarantine", "list", "-c", str(config)])
    assert "P1\\nINFO forged" in listed.output and "\x1b" not in listed.output
    assert "330106199001011234" not in listed.output
    shown = runner.invoke(app, ["quarantine", "show", "1", "-c", str(config)])
    assert shown.exit_code == 0, shown.output
    first, *rest = shown.output.splitlines()
    assert first.startswith("# record: shown whole, personal data unmasked")
    assert "\x1b" not in shown.output and all(not line.startswith("INFO") for line in rest)
    assert "330106199001011234" in shown.output  # the record, whole, for the archivist who asked for it


def test_a_retry_report_is_titled_as_a_retry() -> None:
    from night.report import summary_markdown

    summary = {"run_id": "R1", "status": "completed", "sources": {}, "totals": {}, "quarantine_reasons": {},
               "dry_run": False}
    assert summary_markdown(summary).startswith("# Nightly transfer R1")
    assert summary_markdown(summary, title="Quarantine retry 隔离区重试").startswith("# Quarantine retry 隔离区重试 R1")


def test_a_run_summary_shows_a_source_error_on_its_own_line() -> None:
    from night.report import summary_markdown, summary_text

    summary = {"run_id": "R2", "status": "failed", "dry_run": False, "totals": {}, "quarantine_reasons": {},
               "sources": {"dept": {"error": "row P1\nguidang nightly transfer R9: completed 330106199001011234"}}}
    for text in (summary_text(summary), summary_markdown(summary)):
        assert "R9: completed" in text and not any(line.startswith("guidang nightly transfer R9")
                                                   for line in text.splitlines())
        assert "330106199001011234" not in text
