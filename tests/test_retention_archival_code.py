"""档号 after DA/T 13-2022: composition, the empty-org rule, parsing and clear refusals."""

from __future__ import annotations

import pytest

from retention import DEFAULT_TEMPLATE, ArchivalCodeError, compose_archival_code, parse_archival_code
from schemas.config import Fonds
from schemas.model import RetentionPeriod


def test_default_template_is_the_fonds_default() -> None:
    assert Fonds(code="Z109", name="x").archival_code_template == DEFAULT_TEMPLATE


def test_compose_example_from_design() -> None:
    code = compose_archival_code(
        DEFAULT_TEMPLATE, fonds="Z109", category="WS", year=2026, period="D30", org="XK", item=1
    )
    assert code == "Z109-WS·2026·D30·XK-0001"


@pytest.mark.parametrize(
    ("period", "org", "item", "expected"),
    [
        (RetentionPeriod.PERMANENT, "XK", 12, "Z109-WS·2026·Y·XK-0012"),
        ("永久", "", 1, "Z109-WS·2026·Y-0001"),
        ("10年", "", 12345, "Z109-WS·2026·D10-12345"),
        ("D30", "A1", 9999, "Z109-WS·2026·D30·A1-9999"),
    ],
)
def test_round_trip(period, org, item, expected) -> None:
    code = compose_archival_code(fonds="Z109", category="WS", year=2026, period=period, org=org, item=item)
    assert code == expected
    parts = parse_archival_code(code)
    assert (parts.fonds, parts.category, parts.year, parts.org, parts.item) == ("Z109", "WS", 2026, org, item)
    assert parts.period.value in code
    assert parts.as_dict()["period"] == parts.period.value


@pytest.mark.parametrize(
    ("template", "org", "expected"),
    [
        ("{org}-{fonds}-{category}-{year}-{period}-{item:05d}", "", "Z109-WS-2026-D30-00007"),
        ("{org}-{fonds}-{category}-{year}-{period}-{item:05d}", "KJ", "KJ-Z109-WS-2026-D30-00007"),
        ("{fonds}·{year}·{org}·{category}·{period}·{item:03d}", "", "Z109·2026·WS·D30·007"),
        ("{fonds}-{category}-{year}-{period}-{item}", "XK", "Z109-WS-2026-D30-7"),
    ],
)
def test_empty_org_leaves_no_dangling_separator_in_other_templates(template, org, expected) -> None:
    code = compose_archival_code(template, fonds="Z109", category="WS", year=2026, period="D30", org=org, item=7)
    assert code == expected
    assert "··" not in code and "--" not in code and not code.startswith(("-", "·"))
    if "{org}" in template:
        assert parse_archival_code(code, template).org == org
    assert parse_archival_code(code, template).item == 7


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("Z109-WS·2026·D31·XK-0001", "保管期限 'D31'"),
        ("Z109-ws·2026·D30·XK-0001", "门类代码 'ws'"),
        ("Z109-WS·26·D30·XK-0001", "年度 '26'"),
        ("Z109-WS·2026·D30·X K-0001", "机构问题代码 'X K'"),
        ("Z109-WS·2026·D30·XK-001", "件号 '001'"),
        ("Z109-WS·2026·D30·XK-0000", "件号 '0000'"),
        ("Z109/WS/2026", "does not have the shape"),
        ("", "does not have the shape"),
    ],
)
def test_parse_refuses_with_the_bad_part_named(code: str, fragment: str) -> None:
    with pytest.raises(ArchivalCodeError) as exc:
        parse_archival_code(code)
    assert fragment in str(exc.value)
    assert exc.value.findings[0].code == "R-ARCHIVAL-CODE-INVALID"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"category": "W·S"}, "门类代码"),
        ({"org": "x-k"}, "机构问题代码"),
        ({"period": "20年"}, "保管期限"),
        ({"item": 0}, "件号"),
        ({"year": 26}, "年度"),
        ({"fonds": "Z 109"}, "全宗号"),
    ],
)
def test_compose_refuses_bad_parts(kwargs, fragment) -> None:
    args = {"fonds": "Z109", "category": "WS", "year": 2026, "period": "D30", "org": "XK", "item": 1, **kwargs}
    with pytest.raises(ArchivalCodeError, match=fragment):
        compose_archival_code(DEFAULT_TEMPLATE, **args)


@pytest.mark.parametrize(
    "template", ["{fonds}-{unit}-{item}", "{fonds}-{year}-{period}", "{fonds}-{item:>5}-{x", "{fonds}{fonds}"]
)
def test_bad_templates(template: str) -> None:
    with pytest.raises(ArchivalCodeError, match="template"):
        compose_archival_code(template, fonds="Z109", category="WS", year=2026, period="D30", org="XK", item=1)
