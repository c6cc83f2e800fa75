"""schemas/personal.py: the one place that finds a record's personal data in every shape it is stored in."""

from __future__ import annotations

import pytest

from schemas.personal import agency_of, applicant_name, mask_personal, personal_names

PERSON = {"name": "王秀英", "card_type": "身份证", "card_number": "330106198510232001"}
COMPANY = {"name": "杭州留下药店有限公司", "card_type": "统一社会信用代码", "card_number": "91330106MA2GXXXX1X"}


@pytest.mark.parametrize("record", [
    {"project_id": "1", "agency": "西湖区民政局", "applicant": PERSON},  # a matters row
    {"matter": {"project_id": "1", "agency": "西湖区民政局", "applicant": PERSON}},  # quarantined, accepted
    {"invalid": {"raw": {"DEPTNAME": "西湖区民政局", "APPLYERNAME": "王秀英", "APPLYERPAGETYPE": "身份证"}}},
    {"invalid": {"raw": {"dept_name": "x", "target_name": "王秀英", "applicant_name": "王秀英",
                         "agency": "西湖区民政局"}}},  # a SQL source's row with its canonical copies
    {"invalid": {"raw": {"实施机构": "西湖区民政局", "申请人名称": "王秀英"}}},
])
def test_a_persons_name_and_the_unit_are_found_in_every_shape(record: dict) -> None:  # type: ignore[type-arg]
    assert personal_names(record) == ["王秀英"]
    assert applicant_name(record) == "王秀英"
    assert agency_of(record) == "西湖区民政局"
    assert mask_personal("婚姻登记档案查询（王秀英）", personal_names(record)) == "婚姻登记档案查询（王＊＊）"


def test_an_organisations_name_is_not_personal_and_stays_readable() -> None:
    for record in ({"project_id": "1", "applicant": COMPANY}, {"matter": {"applicant": COMPANY}},
                   {"invalid": {"raw": {"APPLYERNAME": COMPANY["name"], "APPLYERPAGECODE": COMPANY["card_number"]}}}):
        assert personal_names(record) == []
        assert applicant_name(record) == COMPANY["name"]


def test_a_sole_traders_operator_is_masked_not_the_shops_name() -> None:
    record = {"project_id": "1", "applicant": {"name": "西湖区古荡便利店（王杰）", "card_type": "身份证"}}
    assert personal_names(record) == ["王杰"]
    assert mask_personal("设立登记（西湖区古荡便利店（王杰）） 经营者 王杰", personal_names(record)) == \
        "设立登记（西湖区古荡便利店（王＊）） 经营者 王＊"


def test_id_numbers_and_phones_are_masked_with_or_without_names() -> None:
    text = mask_personal("身份证 330106198510232001 手机 13912345678", [])
    assert "330106198510232001" not in text and "13912345678" not in text


def test_a_record_without_an_applicant_or_unit_names_none() -> None:
    assert personal_names(None) == [] and agency_of({"invalid": {"raw": {}}}) is None
    assert applicant_name({"invalid": "not a dict"}) == ""


def test_a_sources_own_columns_are_asked_for_rows_stored_without_canonical_copies() -> None:
    old = {"invalid": {"raw": {"dept_name": "西湖区市场监督管理局", "target_name": "赵婷"}}}
    assert personal_names(old) == [] and agency_of(old) is None
    assert personal_names(old, ("target_name",)) == ["赵婷"]
    assert agency_of(old, ("dept_name",)) == "西湖区市场监督管理局"
