"""The bureau's console over a world a real night archived, served by uvicorn and asked over HTTP:
sign-in and its CSRF, roles, expiry, masking per role, and that nothing it answers changes the archive."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app as cli_app
from ledger.models import MatterRecord, MatterState, QuarantineEntry, WaitingMatter
from schemas.config import load_settings
from schemas.layout import CHECK_REPORT_FILE
from tests.web_support import KEY_ENV, PASSWORDS, Console, csrf_of, sign_in

# Bounded as the masker bounds it (no ASCII letter or digit either side): a run of 18 digits inside a
# hex digest (row_digest, SM3) is not an identity number and is shown as it is.
ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def _records(world: Path) -> list[MatterRecord]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        rows = list(s.scalars(select(MatterRecord).order_by(MatterRecord.id)))
        s.expunge_all()
    engine.dispose()
    return rows


def _with_id_number(world: Path) -> MatterRecord:
    for r in _records(world):
        card = (r.record.get("applicant") or {}).get("card_number") or ""
        if r.state == MatterState.VERIFIED and ID_RE.fullmatch(card) and r.record["applicant"].get("name"):
            return r
    raise AssertionError("the demo night archived no matter of a person with a 居民身份证号")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------- refused without a session or role


def test_without_a_session_pages_redirect_to_sign_in_and_downloads_are_401(console: Console) -> None:
    night = console.summary["run_id"]
    with console.client() as c:
        for path in ("/", "/search?code=Z109", "/matter/1", "/quarantine", "/audit", "/downloads", "/rollout"):
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next="), path
        for path in ("/downloads/register/night/2026-12-01.xlsx", "/downloads/register/batch/x.html",
                     "/downloads/catalogue/x.xml"):
            assert c.get(path).status_code == 401, path
        # a forged cookie is no session either
        c.cookies.set("guidang_session", f"{night}.0123456789abcdef")
        assert c.get("/").status_code == 303


def test_the_wrong_role_gets_403_and_the_nav_offers_only_what_the_role_may_open(console: Console) -> None:
    with console.signed_in("opal") as ops:
        home = ops.get("/")
        assert home.status_code == 200
        assert ">概览<" in home.text and ">隔离<" in home.text
        assert 'href="/search"' not in home.text and 'href="/downloads"' not in home.text
        for path in ("/search?code=Z109", "/audit", "/downloads", "/reconcile", "/matter/1"):
            r = ops.get(path)
            assert r.status_code == 403, path
            assert "无权访问" in r.text
        assert ops.get("/downloads/register/night/2026-12-01.xlsx").status_code == 403
        assert ops.get("/quarantine").status_code == 200
    with console.signed_in("audra") as auditor:
        for path in ("/", "/search", "/audit", "/downloads", "/quarantine"):
            assert auditor.get(path).status_code == 200, path


# ---------------------------------------------------------------- sign-in, CSRF, expiry, sign-out


def test_sign_in_without_or_with_a_wrong_csrf_token_is_refused(console: Console) -> None:
    name, (_, password) = "archie", PASSWORDS["archie"]
    with console.client() as c:
        r = c.post("/login", data={"username": name, "password": password})
        assert r.status_code == 403 and "guidang_session" not in r.cookies
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"username": name, "password": password, "csrf": token[:-2] + "00"})
        assert r.status_code == 403 and "guidang_session" not in r.cookies
    # a token lifted from one browser's form is worthless without that browser's nonce cookie
    with console.client() as c1, console.client() as c2:
        token = csrf_of(c1.get("/login").text)
        r = c2.post("/login", data={"username": name, "password": password, "csrf": token})
        assert r.status_code == 403
        assert c2.get("/").status_code == 303


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(console: Console) -> None:
    answers = []
    with console.client() as c:
        for user, pw in (("archie", "not-the-password"), ("nobody", "archive-pass-1")):
            token = csrf_of(c.get("/login").text)
            r = c.post("/login", data={"username": user, "password": pw, "csrf": token})
            answers.append((r.status_code, "用户名或密码错误" in r.text, "guidang_session" in r.cookies))
    assert answers == [(401, True, False), (401, True, False)]


def test_a_session_expires_after_its_idle_minutes_on_the_servers_clock(console: Console) -> None:
    from datetime import timedelta

    start = console.clock.offset
    try:
        with console.signed_in("audra") as c:
            console.clock.offset = start + timedelta(minutes=20)
            assert c.get("/").status_code == 200  # a request moves the idle expiry on
            console.clock.offset = start + timedelta(minutes=45)
            assert c.get("/").status_code == 200  # 25 minutes after the last request
            console.clock.offset = start + timedelta(minutes=76)
            r = c.get("/")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            assert c.get("/downloads/register/night/2026-12-01.xlsx").status_code == 401
    finally:
        console.clock.offset = start


def test_sign_out_needs_the_sessions_token_and_ends_the_session_for_the_server(console: Console) -> None:
    with console.signed_in("archie") as c:
        cookie = c.cookies["guidang_session"]
        assert c.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert c.get("/").status_code == 200
        token = csrf_of(c.get("/").text)
        r = c.post("/logout", data={"csrf": token})
        assert r.status_code == 303
    with console.client() as replay:  # the old cookie, kept by an attacker, opens nothing
        replay.cookies.set("guidang_session", cookie)
        assert replay.get("/").status_code == 303


# ---------------------------------------------------------------- what the pages show


def test_search_by_a_typed_archival_code_opens_the_package_with_its_report_and_digests(console: Console) -> None:
    record = next(r for r in _records(console.world) if r.state == MatterState.VERIFIED)
    typed = record.archival_code.replace("·", "-")
    with console.signed_in("audra") as c:
        found = c.get("/search", params={"code": typed})
        assert found.status_code == 200
        assert f'href="/matter/{record.id}"' in found.text
        page = c.get(f"/matter/{record.id}").text
    text = _text(page)
    assert "检测报告" in text and "结论： 通过" in text
    stored = console.world / "archive" / record.package_key
    report = (stored / CHECK_REPORT_FILE).read_text(encoding="utf-8")
    assert 'GD-1-1' in report and "GD-1-1" in text
    for doc in (p for p in stored.rglob("*.pdf")):
        digest = hashlib.sha256(doc.read_bytes()).hexdigest()
        assert digest in page, doc.name
    assert text.count("一致") >= record.file_count
    assert "verified" in text and "numbered" in text  # its events from the ledger, kind codes kept
    assert "校验归档" in text and "编号" in text and '{"' not in page  # named in Chinese, no raw JSON


def test_overview_counts_per_unit_are_the_ledgers(console: Console) -> None:
    verified = [r for r in _records(console.world) if r.state == MatterState.VERIFIED]
    per_unit: dict[str, tuple[int, int]] = {}
    for r in verified:
        n, b = per_unit.get(r.agency, (0, 0))
        per_unit[r.agency] = (n + 1, b + (r.total_bytes or 0))
    with console.signed_in("opal") as c:
        page = _text(c.get("/").text)
    assert f"已归档 {len(verified)} 件" in page
    records = _records(console.world)
    not_in_scope = sum(r.state == MatterState.NOT_IN_SCOPE for r in records)
    engine = create_engine(f"sqlite:///{console.world / 'ledger.sqlite'}")
    with Session(engine) as s:
        waiting = len(list(s.scalars(select(WaitingMatter))))
    engine.dispose()
    assert not_in_scope and waiting  # the demo night has both
    assert f"不归档 {not_in_scope} 件" in page and f"待启用 {waiting} 件" in page
    for agency, (n, size) in per_unit.items():
        assert f"{agency} {n} " in page and f" {size} " in page, agency


def test_personal_data_is_masked_except_for_the_archivist(console: Console) -> None:
    record = _with_id_number(console.world)
    name, card = record.record["applicant"]["name"], record.record["applicant"]["card_number"]
    with console.signed_in("archie") as archivist:
        clear = archivist.get(f"/matter/{record.id}").text
    assert card in clear and name in clear
    with console.signed_in("audra") as auditor:
        masked = auditor.get(f"/matter/{record.id}").text
        listed = auditor.get("/search", params={"project": record.project_id}).text
        held = auditor.get("/quarantine").text
    for page in (masked, listed):
        assert card not in page and name not in page
        assert card[:6] in masked and name[0] + "＊" in page
    assert ID_RE.search(_text(masked)) is None
    assert ID_RE.search(_text(held)) is None
    engine = create_engine(f"sqlite:///{console.world / 'ledger.sqlite'}")
    with Session(engine) as s:
        held_count = len(list(s.scalars(select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None)))))
    engine.dispose()
    assert f"未解决的隔离 {held_count} 件" in _text(held)


def test_a_nights_register_downloads_as_the_cli_writes_it(console: Console, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    verified = {r.archival_code for r in _records(console.world) if r.state == MatterState.VERIFIED}
    with console.signed_in("audra") as c:
        listing = c.get("/downloads").text
        link = re.search(r'href="(/downloads/register/night/[0-9-]+\.xlsx)"', listing)
        assert link, "the downloads page offers no night"
        r = c.get(link.group(1))
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    (tmp_path / "r.xlsx").write_bytes(r.content)
    cells = {str(v) for ws in load_workbook(tmp_path / "r.xlsx").worksheets for row in ws.iter_rows(values_only=True)
             for v in row if v is not None}
    assert verified <= cells


# ---------------------------------------------------------------- the console changes nothing


def _state(world: Path) -> tuple[str, str]:
    """A digest of every row of the ledger (read through a read-only connection) and of every stored file."""
    con = sqlite3.connect(f"file:{world / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        ledger = hashlib.sha256("\n".join(con.iterdump()).encode("utf-8")).hexdigest()
    finally:
        con.close()
    files = hashlib.sha256()
    for p in sorted((world / "archive").rglob("*")):
        if p.is_file():
            files.update(f"{p.relative_to(world)}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return ledger, files.hexdigest()


def test_only_sign_in_out_retry_and_the_disposition_forms_write_and_no_get_changes_the_archive(
        console: Console) -> None:
    from custody.web.app import create_app

    app = create_app(load_settings(console.world / "guidang.yaml"))

    def routes(items: list) -> list:  # FastAPI keeps included routers as entries of their own
        out = []
        for r in items:
            inner = getattr(r, "original_router", None) or getattr(r, "router", None)
            out += routes(inner.routes) if inner is not None and hasattr(inner, "routes") else [r]
        return out

    every = routes(app.routes)
    assert len(every) > 10
    writers = {(route.path, m) for route in every for m in (getattr(route, "methods", None) or ())
               if m not in ("GET", "HEAD")}
    assert writers == {("/login", "POST"), ("/logout", "POST"), ("/quarantine/{entry_id}/retry", "POST"),
                       ("/holds", "POST"), ("/holds/{hold_id}/release", "POST"), ("/appraisals", "POST"),
                       ("/appraisals/{review_id}/decide", "POST"), ("/appraisals/{review_id}/approve", "POST")}
    before = _state(console.world)
    record = next(r for r in _records(console.world) if r.state == MatterState.VERIFIED)
    paths = ["/", "/search", f"/matter/{record.id}", "/quarantine", "/audit", "/downloads", "/rollout",
             "/reconcile", "/downloads/register/night/2026-12-01.xlsx", f"/downloads/catalogue/{record.batch_id}.xml",
             "/copies"]
    with console.signed_in("archie") as c:
        for path in paths:
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                assert c.request(method, path).status_code == 405, (method, path)
        for path in ("/holds", "/appraisals"):  # a form posts here, with the session's token only
            assert c.post(path, data={"reason": "x", "before": "2100-01-01"}).status_code == 403, path
            for method in ("PUT", "DELETE", "PATCH"):
                assert c.request(method, path).status_code == 405, (method, path)
        for path in [*paths, "/holds", "/appraisals", "/audit?verify=1",
                     f"/downloads/register/batch/{record.batch_id}.html"]:
            assert c.get(path).status_code in (200, 404), path
    assert _state(console.world) == before


# ---------------------------------------------------------------- starting it


def test_the_console_does_not_start_without_its_signing_key(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    r = CliRunner().invoke(cli_app, ["web", "--config", str(console.world / "guidang.yaml"), "--port", "1"])
    assert r.exit_code == 2
    assert KEY_ENV in r.output


def test_hash_password_reads_stdin_and_prints_a_hash_that_verifies_never_the_password() -> None:
    from argon2 import PasswordHasher

    r = CliRunner().invoke(cli_app, ["web", "--hash-password"], input="s3cret-console-pw\n")
    assert r.exit_code == 0, r.output
    assert "s3cret-console-pw" not in r.output
    assert PasswordHasher().verify(r.output.strip(), "s3cret-console-pw")
    short = CliRunner().invoke(cli_app, ["web", "--hash-password"], input="short\n")
    assert short.exit_code == 2


def test_httpx_is_what_a_browser_sees_no_cache_and_no_frames(console: Console) -> None:
    with console.signed_in("archie") as c:
        r = c.get("/")
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"
    with httpx.Client(base_url=console.url) as c:
        login = c.get("/login")
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("samesite", "SameSite")
    with console.client() as c:
        r = sign_in(c, "audra", PASSWORDS["audra"][1])
    session_cookie = r.headers["set-cookie"]
    assert "guidang_session=" in session_cookie and "HttpOnly" in session_cookie and "lax" in session_cookie.lower()


def test_rollout_page_shows_the_disabled_units_and_the_target(console: Console) -> None:
    with console.signed_in("opal") as c:  # operations may follow the rollout too
        page = c.get("/rollout?as_of=2026-12-01")
    assert page.status_code == 200
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr class=\"status-\w+\">\s*<td>([^<]+)<.*?</tr>",
                                                         page.text, re.S)}
    hb = rows["杭州市生态环境局西湖分局"]
    assert "未启用" in hb and "2026-12-31" in hb and "有风险" in hb
    assert "未启用" in rows["西湖区卫生健康局"]
    assert "已达成" in rows["西湖区住房和城乡建设局"] and "2026-09-30" in rows["西湖区住房和城乡建设局"]


def test_reconcile_page_asks_the_sources_and_names_what_is_missing(console: Console) -> None:
    with console.signed_in("audra") as c:
        page = c.get("/reconcile", params={"from": "2026-10-01", "to": "2026-10-31"})
        assert page.status_code == 200 and "源系统没有办结的事项，没有可对账的内容" in page.text
        assert "均有下落" not in page.text  # an empty period is not a balanced one
        week = c.get("/reconcile", params={"from": "2026-11-15", "to": "2026-12-14"})
        assert week.status_code == 200, week.text
        assert re.search(r"源系统在此期间办结的 [1-9]\d* 件事项均有下落", week.text), week.text
        assert "待启用" in week.text
        too_long = c.get("/reconcile", params={"from": "2026-01-01", "to": "2026-12-31"})
        assert too_long.status_code == 400
        # without dates it opens on the newest 办结 day the ledger holds, not on an empty yesterday
        newest = max(r.completed_at for r in _records(console.world))
        day = (newest if newest.tzinfo else newest.replace(tzinfo=UTC)).astimezone(ZoneInfo("Asia/Shanghai")).date()
        opened = c.get("/reconcile").text
        assert f'name="from" value="{day.isoformat()}"' in opened
        assert "件事项均有下落" in opened or "处差异" in opened
    with console.signed_in("opal") as c:
        assert c.get("/reconcile").status_code == 403


def test_the_demo_worlds_console_users_sign_in_with_the_passwords_its_config_names(small_pristine: Path) -> None:
    from argon2 import PasswordHasher

    from guidang_demo.world import DEMO_USERS

    settings = load_settings(small_pristine / "guidang.yaml")
    assert settings.web is not None
    text = (small_pristine / "guidang.yaml").read_text(encoding="utf-8")
    for username, role, password in DEMO_USERS:
        user = settings.web.user(username)
        assert user is not None and user.role == role and f"{username} / {password}" in text
        assert PasswordHasher().verify(user.password_hash, password)


def test_search_pages_through_every_result_with_the_total(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    import custody.web.pages as pages

    monkeypatch.setattr(pages, "RESULTS_PER_PAGE", 10)  # the served app reads it per request
    everything = [r for r in _records(console.world) if r.agency.startswith("西湖区")]
    seen: list[str] = []
    with console.signed_in("archie") as c:
        first = c.get("/search", params={"unit": "西湖区"}).text
        pages_n = -(-len(everything) // 10)
        assert f"找到 {len(everything)} 件，第 1 / {pages_n} 页" in _text(first)
        link = re.search(r'rel="next" href="([^"]+)"', first)
        assert link and 'rel="prev"' not in first
        for n in range(1, pages_n + 1):
            page = c.get("/search", params={"unit": "西湖区", "page": n}).text
            seen += re.findall(r'href="/matter/(\d+)"', page)
        assert 'rel="next"' not in page and 'rel="prev"' in page
    assert sorted(map(int, seen)) == sorted(r.id for r in everything)  # each once, none left out


def test_every_check_report_item_is_said_in_chinese(console: Console) -> None:
    from custody.web.report_text import in_chinese

    assert in_chinese("2 PDF(s) open with their page trees; 1 OFD(s) resolve to their pages and fonts") == \
        "2 个 PDF 文件可打开，页面树完好；1 个 OFD 文件的页面和字体可解析"
    assert in_chinese("something new the packager says") is None  # kept as written, folded
    with console.signed_in("archie") as c:
        for r in (r for r in _records(console.world) if r.state == MatterState.VERIFIED):
            page = c.get(f"/matter/{r.id}").text
            report = page[page.index('<table class="report">'):page.index("</table>", page.index('class="report"'))]
            assert "<details>" not in report, (r.archival_code, _text(report)[:400])
            assert not re.search(r"\b(document|file|match|present|agree)\w*\b", _text(report)), r.archival_code
