"""The console's security holes, each tried as an outsider would over real HTTP: personal data in
downloads and on the quarantine page, a link planted in the archive, malformed parameters, sign-in
guessing and user-name probing, sessions without end, and sign-in forms posted twice."""

from __future__ import annotations

import io
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.models import Event, MatterRecord, MatterState, QuarantineEntry
from schemas.personal import agency_of, personal_names
from tests.web_support import PASSWORDS, Console, csrf_of, serve, sign_in

SECURITY_HEADERS = ("X-Frame-Options", "X-Content-Type-Options", "Content-Security-Policy")


def _rows(world: Path, model: type) -> list:  # type: ignore[type-arg]
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        rows = list(s.scalars(select(model)))
        s.expunge_all()
    engine.dispose()
    return rows


def _persons(world: Path) -> list[str]:
    names = [n for r in _rows(world, MatterRecord) if r.state == MatterState.VERIFIED for n in personal_names(r.record)]
    assert names, "the demo night archived no matter of a person"
    return names


def _xlsx_text(data: bytes) -> str:
    from openpyxl import load_workbook

    return " ".join(str(v) for ws in load_workbook(io.BytesIO(data)).worksheets
                    for row in ws.iter_rows(values_only=True) for v in row if v is not None)


# ---------------------------------------------------------------- masking in every download and page


def _as_text(r, path: str) -> str:  # type: ignore[no-untyped-def]
    return _xlsx_text(r.content) if path.endswith(".xlsx") else r.content.decode("utf-8")


def test_registers_and_the_catalogue_mask_persons_names_for_the_auditor(console: Console) -> None:
    names = _persons(console.world)
    records = [r for r in _rows(console.world, MatterRecord) if r.state == MatterState.VERIFIED]
    batch = next(r.batch_id for r in records if r.batch_id)
    companies = [r.record["applicant"]["name"] for r in records if not personal_names(r.record)]
    with console.signed_in("audra") as auditor, console.signed_in("archie") as archivist:
        listing = auditor.get("/downloads").text
        day = re.search(r"/downloads/register/night/([0-9-]+)\.html", listing)
        assert day, "the downloads page offers no night register"
        paths = [f"/downloads/register/night/{day.group(1)}.html", f"/downloads/register/night/{day.group(1)}.xlsx",
                 f"/downloads/register/batch/{batch}.html", f"/downloads/register/batch/{batch}.xlsx",
                 f"/downloads/catalogue/{batch}.xml"]
        for path in paths:
            masked, clear = auditor.get(path), archivist.get(path)
            assert masked.status_code == clear.status_code == 200, path
            masked_text, clear_text = _as_text(masked, path), _as_text(clear, path)
            assert any(n in clear_text for n in names), path  # the archivist sees the 题名 as archived
            leaked = [n for n in names if n in masked_text]
            assert not leaked, (path, leaked)
            assert any(n[0] + "＊" in masked_text for n in names), path
            if not path.endswith(".xml"):  # companies stay readable, so rows can be told apart
                assert any(c in masked_text for c in companies), path


def test_the_quarantine_page_masks_names_in_every_shape_and_names_the_unit(console: Console) -> None:
    entries = [e for e in _rows(console.world, QuarantineEntry) if e.resolved_at is None]
    shapes = {("matter" if "matter" in e.record else "invalid") for e in entries}
    assert shapes == {"matter", "invalid"}, "the demo night should hold both shapes of quarantine row"
    names = [n for e in entries for n in personal_names(e.record)]
    assert any("invalid" in e.record and personal_names(e.record) for e in entries)
    for user in ("audra", "opal"):
        with console.signed_in(user) as c:
            page = c.get("/quarantine").text
        leaked = [n for n in names if n in page]
        assert not leaked, (user, leaked)
    with console.signed_in("opal") as c:
        overview = c.get("/").text
    for shown in (page, overview):
        assert "未识别的实施机构" not in shown
    assert {agency_of(e.record) for e in entries} <= set(re.findall(r"西湖区[^<\s]*", page)) | {None}


def test_a_catalogue_replaced_by_a_link_to_a_system_file_is_not_served(console: Console, tmp_path: Path) -> None:
    records = [r for r in _rows(console.world, MatterRecord) if r.batch_id]
    batch = records[0].batch_id
    stored = [p for p in (console.world / "archive").rglob("目录文件.xml") if batch in str(p)]
    assert len(stored) == 1
    catalogue = stored[0]
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:secret-outside-the-archive", encoding="utf-8")
    kept = catalogue.with_name("kept.xml")
    os.rename(catalogue, kept)
    catalogue.symlink_to(secret)
    try:
        with console.signed_in("archie") as c:
            r = c.get(f"/downloads/catalogue/{batch}.xml")
        assert r.status_code == 404
        assert "secret-outside-the-archive" not in r.text
        assert "符号链接" in r.text or "symbolic link" in r.text
    finally:
        catalogue.unlink()
        os.rename(kept, catalogue)


# ---------------------------------------------------------------- malformed parameters


@pytest.mark.parametrize("path", [
    "/matter/9223372036854775808", "/matter/99999999999999999999", "/matter/-1",
    "/search?date_from=0001-01-01", "/search?date_to=9999-12-31", "/search?date_from=2026-13-01",
    "/reconcile?from=0001-01-01", "/reconcile?to=9999-12-31&from=9999-12-30", "/search?code=%00",
    "/search?project=a%00b", "/reconcile?from=2026-01-01&to=2026-12-31",
    "/downloads/register/night/0001-01-01.html", "/downloads/register/night/9999-12-31.xlsx",
    "/downloads/register/night/2026-02-30.html", "/downloads/register/batch/%00.html", "/downloads/catalogue/%00.xml",
    "/downloads/catalogue/..%2F..%2Fetc%2Fpasswd.xml", "/matter/1/file/0/original",
    "/matter/1/file/99999999999999/access",
    "/?page=-1", "/?page=99999999999999999999", "/search?title=%00", "/search?page=0&title=x",
    "/rollout?as_of=0001-01-01", "/rollout?as_of=%00", "/reconcile?unit=%00", "/quarantine?reason=%00",
    "/search?date_from=2026-12-01&date_to=2026-11-01",
])
def test_a_malformed_parameter_answers_4xx_in_chinese_with_the_headers(console: Console, path: str) -> None:
    with console.signed_in("archie") as c:
        r = c.get(path)
    assert 400 <= r.status_code < 500, (path, r.status_code)
    for header in SECURITY_HEADERS:
        assert header in r.headers, (path, header)
    assert r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text and re.search(r"[\u4e00-\u9fff]{4}", r.text)
    assert "Internal Server Error" not in r.text and '{"detail"' not in r.text


def test_a_page_that_does_not_exist_is_a_chinese_page_with_the_headers(console: Console) -> None:
    with console.signed_in("audra") as c:
        r = c.get("/no-such-page")
    assert r.status_code == 404 and "页面不存在" in r.text and "X-Frame-Options" in r.headers


# ---------------------------------------------------------------- sign-in


def _post(c, user: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_of(c.get("/login").text)
    return c.post("/login", data={"username": user, "password": password, "csrf": token, "next": "/"})


def _events(world: Path, kind: str) -> list[Event]:
    return [e for e in _rows(world, Event) if e.kind == kind]


def test_guessing_a_password_is_slowed_then_locked_out_and_each_step_is_in_the_chain(console: Console) -> None:
    with serve(console.world) as (url, clock):  # a console of its own: its lockouts touch no other test
        import httpx

        with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as c:
            before = len(_events(console.world, "sign-in-failed"))
            answers = []
            for i in range(8):
                r = _post(c, "archie", f"guess-{i}")
                answers.append(r.status_code)
                if r.status_code == 429:
                    assert int(r.headers["Retry-After"]) >= 1 and "X-Frame-Options" in r.headers
                    assert "登录失败次数过多" in r.text
                    if int(r.headers["Retry-After"]) > 60:  # locked out, not a back-off
                        break
                    clock.offset += timedelta(seconds=int(r.headers["Retry-After"]))
            assert answers[:2] == [401, 401] and 429 in answers
            # locked out: the right password is refused too
            r = _post(c, "archie", PASSWORDS["archie"][1])
            assert r.status_code == 429 and "guidang_session" not in r.cookies
            failed = _events(console.world, "sign-in-failed")[before:]
            assert len(failed) >= 5 and all(e.payload["username"] == "archie" for e in failed)
            assert failed[0].payload["address"] == "127.0.0.1"
            locked = _events(console.world, "sign-in-locked")
            assert locked and locked[-1].payload["who"] == "archie"
            # the lockout ends after its minutes
            clock.offset += timedelta(minutes=16)
            assert _post(c, "archie", PASSWORDS["archie"][1]).status_code == 303


def test_one_address_guessing_many_user_names_is_locked_out(console: Console) -> None:
    import httpx

    with serve(console.world) as (url, _), httpx.Client(base_url=url, follow_redirects=False, timeout=30) as c:
        statuses = []
        for i in range(25):
            r = _post(c, f"user{i}", "x")
            statuses.append(r.status_code)
            if r.status_code == 429 and "sign-in-locked" in {e.kind for e in _events(console.world, "sign-in-locked")
                                                             if e.payload.get("who") == "127.0.0.1"}:
                break
        assert statuses[-1] == 429
        assert _post(c, "audra", PASSWORDS["audra"][1]).status_code == 429


def test_an_unknown_user_costs_what_a_known_one_costs(console: Console) -> None:
    from argon2 import extract_parameters

    from custody.web.auth import PasswordCheck
    from schemas.config import load_settings

    users = load_settings(console.world / "guidang.yaml").web.users  # type: ignore[union-attr]
    check = PasswordCheck([u.password_hash for u in users])
    assert extract_parameters(check.dummy) == extract_parameters(users[0].password_hash)

    runs: dict[str | None, list[float]] = {users[0].password_hash: [], None: []}
    for _ in range(15):  # interleaved, and the fastest of each: what the work costs, not the machine's load
        for stored, times in runs.items():
            start = time.perf_counter()
            assert not check.verify(stored, "wrong-password")
            times.append(time.perf_counter() - start)
    known, unknown = min(runs[users[0].password_hash]), min(runs[None])
    assert 0.5 < unknown / known < 2.0, (known, unknown)


def test_a_session_ends_after_its_absolute_lifetime_however_busy(console: Console) -> None:
    start = console.clock.offset
    try:
        with console.signed_in("audra") as c:
            for _ in range(12 * 3):  # a request every 20 minutes for 12 hours
                assert c.get("/").status_code == 200
                console.clock.offset += timedelta(minutes=20)
            r = c.get("/")
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
    finally:
        console.clock.offset = start


def test_a_sign_in_form_is_good_for_one_post(console: Console) -> None:
    with console.client() as c:
        token = csrf_of(c.get("/login").text)
        nonce = c.cookies["guidang_login"]
        first = c.post("/login", data={"username": "audra", "password": "wrong", "csrf": token})
        assert first.status_code == 401
        c.cookies.set("guidang_login", nonce, path="/login")  # a replay sends the captured pair again
        second = c.post("/login", data={"username": "audra", "password": PASSWORDS["audra"][1], "csrf": token})
        assert second.status_code == 403 and "guidang_session" not in second.cookies
    with console.client() as c:
        sign_in(c, "audra", PASSWORDS["audra"][1])  # a fresh form works


@pytest.mark.parametrize("target", ["//evil.example/", "/\t/evil.example/", "/\n/evil.example", "/\\evil.example",
                                    "https://evil.example/", " /x", "/%09/evil.example"])
def test_sign_in_never_sends_the_browser_to_another_site(console: Console, target: str) -> None:
    with console.client() as c:
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"username": "audra", "password": PASSWORDS["audra"][1], "csrf": token,
                                   "next": target})
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith("/") and not location.lstrip("/\t\n ").startswith("evil"), location
        assert location in ("/", target), location


def test_a_refused_sql_row_stored_in_the_sources_own_columns_is_masked_and_placed(console: Console) -> None:
    """A quarantine row written before canonical copies were kept: only the source's column names."""
    import json
    import sqlite3

    db = sqlite3.connect(console.world / "ledger.sqlite")
    try:
        row = next((i, json.loads(r)) for i, r in db.execute("select id, record from quarantine")
                   if "target_name" in json.loads(r).get("invalid", {}).get("raw", {}))
        entry_id, record = row
        raw = record["invalid"]["raw"]
        name = raw["target_name"]
        old = {**record, "invalid": {**record["invalid"], "raw": {k: v for k, v in raw.items()
                                                                   if k not in ("applicant_name", "agency")}}}
        db.execute("update quarantine set record = ? where id = ?", (json.dumps(old, ensure_ascii=False), entry_id))
        db.commit()
        with console.signed_in("audra") as c:
            page, home = c.get("/quarantine").text, c.get("/").text
        person = personal_names(old, ("target_name",))[0]  # a sole trader's name: the operator in it
        with console.signed_in("archie") as c:
            assert name in c.get("/quarantine").text  # the archivist sees it as stored
        at = page.find(person)
        assert person in name and at < 0, page[max(0, at - 300):at + 100]
        assert person[0] + "＊" in page
        assert "未识别的实施机构" not in page and "未识别的实施机构" not in home
    finally:
        db.execute("update quarantine set record = ? where id = ?", (json.dumps(record, ensure_ascii=False), entry_id))
        db.commit()
        db.close()
