"""The console in a real browser: Debian's headless chromium driven by Playwright (never a browser
Playwright downloads). Signs in, searches a 档号, opens the package, sees its 检测报告, downloads the
night's register and finds that night's rows in it."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState
from tests.web_support import PASSWORDS, Console

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        if os.environ.get("GUIDANG_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium); .ci/run installs it")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _verified(world: Path) -> list[MatterRecord]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        rows = list(s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)))
        s.expunge_all()
    engine.dispose()
    return rows


def test_sign_in_search_open_the_package_and_download_the_nights_register(
    console: Console, browser, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    from openpyxl import load_workbook

    verified = _verified(console.world)
    record = verified[len(verified) // 2]
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(console.url + "/search")
        assert "/login" in page.url  # sent to sign in first
        page.fill("input[name=username]", "audra")
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        assert "用户名或密码错误" in page.inner_text("main")
        page.fill("input[name=username]", "audra")
        page.fill("input[name=password]", PASSWORDS["audra"][1])
        page.click("main button[type=submit]")
        page.wait_for_url(console.url + "/search")  # back where it was going

        page.fill("input[name=code]", record.archival_code.replace("·", "-"))
        page.click("form.search button[type=submit]")
        page.click(f"a[href='/matter/{record.id}']")
        page.wait_for_url(f"{console.url}/matter/{record.id}")
        assert page.inner_text("h1") == f"档案 {record.archival_code}"
        report = page.locator("#report + p.conclusion").inner_text()
        assert "结论" in report and "通过" in report
        assert page.locator("table.report tbody tr").count() >= 15  # DA/T 70's items, one row each
        assert "GD-2-2" in page.inner_text("table.report")

        page.click("nav a[href='/downloads']")
        link = page.locator("a[href^='/downloads/register/night/'][href$='.xlsx']").first
        with page.expect_download() as info:
            link.click()
        saved = tmp_path / "register.xlsx"
        info.value.save_as(saved)
    finally:
        context.close()
    assert saved.read_bytes()[:2] == b"PK"  # a real zip container, as XLSX is
    cells = {str(v) for ws in load_workbook(saved).worksheets for row in ws.iter_rows(values_only=True)
             for v in row if v is not None}
    assert {r.archival_code for r in verified} <= cells


def test_in_the_browser_no_session_and_the_wrong_role_are_refused(console: Console, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    try:
        answer = page.goto(console.url + "/downloads/register/night/2026-12-01.xlsx")
        assert answer is not None and answer.status == 401  # a download without a session
        page.goto(console.url + "/login")
        page.fill("input[name=username]", "opal")  # operations: no 检索, no 对账
        page.fill("input[name=password]", PASSWORDS["opal"][1])
        page.click("main button[type=submit]")
        page.wait_for_url(console.url + "/")
        assert page.locator("nav a[href='/search']").count() == 0
        for path in ("/search", "/reconcile"):
            answer = page.goto(console.url + path)
            assert answer is not None and answer.status == 403, path
        answer = page.goto(console.url + "/rollout")
        assert answer is not None and answer.status == 200 and "杭州市生态环境局西湖分局" in page.inner_text("main")
    finally:
        context.close()


def _sm3(path: Path) -> str:
    from schemas.digest import MultiHasher

    h = MultiHasher()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.digests().sm3


def _verified_files(world: Path, record: MatterRecord) -> dict[str, dict]:  # type: ignore[type-arg]
    from ledger.models import Event

    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        event = s.scalars(select(Event).where(Event.kind == "verified", Event.project_id == record.project_id)
                          .order_by(Event.seq.desc())).first()
        assert event is not None
        files = {f["path"]: f for f in event.payload["files"]}
    engine.dispose()
    return files


def test_an_archivist_searches_by_title_and_applicant_opens_the_access_copy_and_checks_the_original(
    console: Console, browser, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """The issue's walk-through: sign in, search by 题名 and 申请人, open a record, open a PDF's access
    copy and find the 归档章 and the watermark in its first page's text, download the original and
    match its SM3 against the ledger; both uses are then in the chain and on the 审计 page."""
    from io import BytesIO

    from pypdf import PdfReader
    from typer.testing import CliRunner

    from flows.cli import app as cli_app

    people = [r for r in _verified(console.world) if (r.record.get("applicant") or {}).get("card_type") == "身份证"]
    record = people[0]
    name = record.record["applicant"]["name"]
    title_words = record.title.split("（")[0]
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(console.url + "/search")
        page.fill("input[name=username]", "archie")
        page.fill("input[name=password]", PASSWORDS["archie"][1])
        page.click("main button[type=submit]")
        page.wait_for_url(console.url + "/search")
        page.fill("input[name=title]", title_words)
        page.fill("input[name=applicant]", name)
        page.click("form.search button[type=submit]")
        assert "找到" in page.inner_text("p.count")
        assert name in page.inner_text("table.results")
        page.click(f"a[href='/matter/{record.id}']")
        page.wait_for_url(f"{console.url}/matter/{record.id}")

        access = page.locator("table.documents a.access").first
        href = access.get_attribute("href")
        assert href
        row_path = access.locator("xpath=ancestor::tr/td[4]").inner_text().strip()
        answer = context.request.get(console.url + href)
        assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
        first_page = PdfReader(BytesIO(answer.body())).pages[0].extract_text()
        for expected in ("归档章", "全宗号", record.fonds, "年度", str(record.year), "件号",
                         f"{record.item_number:04d}", "保管期限", "页数", "利用人 archie（档案员）"):
            assert expected in first_page, expected
        assert re.search(r"利用人 archie（档案员） \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", first_page)

        original = access.locator("xpath=ancestor::tr").locator("a.original")  # the same document's original
        with page.expect_download() as info:
            original.click()
        saved = tmp_path / "original.pdf"
        info.value.save_as(saved)
        page.goto(console.url + "/audit")
        audit_text = page.inner_text("main")
    finally:
        context.close()
    ledger_file = _verified_files(console.world, record)[row_path]
    assert _sm3(saved) == ledger_file["sm3"]
    stored = console.world / "archive" / record.package_key / row_path
    assert saved.read_bytes() == stored.read_bytes()
    assert "查阅利用件" in audit_text and "下载原件" in audit_text and record.archival_code in audit_text
    result = CliRunner().invoke(cli_app, ["audit", "log", "-c", str(console.world / "guidang.yaml"),
                                          "--kind", "document-viewed", "--kind", "document-downloaded",
                                          "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    events = json.loads(result.output)["events"]
    kinds = {(e["kind"], e["payload"]["user"], e["payload"]["path"], e["payload"]["copy"]) for e in events}
    assert ("document-viewed", "archie", row_path, "利用件") in kinds
    assert ("document-downloaded", "archie", row_path, "原件") in kinds


def test_an_approver_who_decided_a_record_is_refused_and_another_approves_in_the_browser(
    console: Console, browser  # type: ignore[no-untyped-def]
) -> None:
    """An appraisal decided on the command line by alice and, for one record, by vera: vera sees the
    审批通过 button with the warning, clicks it and gets the refusal; ward clicks it and it is approved."""
    import json

    from typer.testing import CliRunner

    from flows.cli import app as cli_app

    config = str(console.world / "guidang.yaml")

    def cli(*args: str) -> dict:  # type: ignore[type-arg]
        r = CliRunner(env={"GUIDANG_CONFIG": None, "GUIDANG_USER": None}).invoke(
            cli_app, [*args, "--config", config, "--json"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    opened = cli("disposition", "open", "--before", "2100-01-01", "--user", "alice")
    review, (first, *rest) = str(opened["review"]), opened["archival_codes"]
    cli("disposition", "decide", review, "destroy", "--code", first, "--reason", "到期", "--user", "vera")
    cli("disposition", "decide", review, "destroy", *[a for c in rest for a in ("--code", c)],
        "--reason", "到期，无继续保存价值", "--user", "alice")

    def sign_in_and_open(page, user: str) -> None:  # type: ignore[no-untyped-def]
        page.goto(console.url + "/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", PASSWORDS[user][1])
        page.click("main button[type=submit]")
        page.wait_for_url(console.url + "/")
        page.click("nav a[href='/appraisals']")
        page.click(f"a[href='/appraisals/{review}']")
        page.wait_for_url(f"{console.url}/appraisals/{review}")

    for user in ("vera", "ward"):
        context = browser.new_context()
        page = context.new_page()
        try:
            sign_in_and_open(page, user)
            assert page.locator("form.approve button").inner_text() == "审批通过"
            warned = "审批须由另一人进行" in page.inner_text("main")
            with page.expect_response(f"{console.url}/appraisals/{review}/approve") as answer:
                page.click("form.approve button")
            main = page.inner_text("main")
            if user == "vera":
                assert warned and answer.value.status == 403 and "审批人不得与鉴定人相同" in main
            else:
                assert not warned
                page.wait_for_url(f"{console.url}/appraisals/{review}?*")
                assert "已审批" in page.inner_text("td.status") and "ward" in page.inner_text("table.fields")
                assert page.locator("form.approve").count() == 0
                assert page.locator("a.list-pdf").count() == 1
        finally:
            context.close()
