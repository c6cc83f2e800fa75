"""The console's 冻结, 鉴定 and 副本 pages over a world two real nights archived with a second copy of the
archive, served by uvicorn and asked over HTTP by users of every role: holds placed and released from
the console and by a unit (covering what a later night archived), an appraisal opened and decided by an
archivist, refused to an approver who decided one of its records and approved by another, its
销毁清单 as an A4 PDF, a destroyed record's tombstone, and the copies' catch-up and repair."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypdf import PdfReader
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app as cli_app
from ledger.models import Event, MatterRecord, MatterState
from night.engine import run_nightly
from schemas.config import load_settings
from tests.test_disposition import rows as records
from tests.web_support import KEY_ENV, Console, add_users, csrf_of, serve
from tests.world_support import unified_running

runner = CliRunner(env={"GUIDANG_CONFIG": None, "GUIDANG_USER": None})
HB = "杭州市生态环境局西湖分局"  # disabled in the demo world until the second night
A4 = (595.28, 841.89)  # points


def cli(world: Path, *args: str) -> tuple[int, Any]:
    r = runner.invoke(cli_app, [*args, "--config", str(world / "guidang.yaml"), "--json"])
    try:
        return r.exit_code, json.loads(r.stdout)
    except ValueError:
        return r.exit_code, r.output


def events(world: Path, kind: str) -> list[Event]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        out = list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.seq)))
        s.expunge_all()
    engine.dispose()
    return out


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def night(world: Path) -> dict[str, Any]:
    with unified_running(world):
        summary = run_nightly(load_settings(world / "guidang.yaml"))
    assert summary["status"] == "completed", summary
    return summary


@pytest.fixture(scope="module")
def console(small_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """Night one with the copy's volume absent and 西湖分局 disabled; the copy back, a hold on that unit
    (nothing of it archived yet); night two (the copy caught up) with the unit enabled; a flipped byte of the
    copy repaired by `audit fixity --copy offsite`; then the console."""
    world = tmp_path_factory.mktemp("web-disposition") / "world"
    shutil.copytree(small_pristine, world)
    config = world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["replicas"] = [{"name": "offsite", "repository": {"kind": "fs", "path": "copy2"}}]
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    night(world)
    (world / "copy2").mkdir()  # mounted again (a hold must reach every copy)
    code, out = cli(world, "disposition", "hold", "--unit", HB, "--reason", "环保督察 审计调查", "--user", "carol")
    assert code == 0 and out["archival_codes"] == [], out
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for unit in data["units"]:
        if unit["name"] == HB:
            unit["enabled"] = True
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    summary = night(world)
    pdf = sorted((world / "copy2").rglob("*.pdf"))[0]
    pdf.chmod(0o644)
    damaged = bytearray(pdf.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    pdf.write_bytes(bytes(damaged))
    code, out = cli(world, "audit", "fixity", "--copy", "offsite")
    assert code == 0 and len(out["repaired"]) == 1, out
    add_users(world)
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = "k" * 16 + os.urandom(16).hex()
    try:
        with unified_running(world), serve(world) as (url, clock):
            yield Console(world, url, clock, summary)
    finally:
        if old is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = old


def test_the_copies_page_shows_each_copy_its_catch_up_and_its_repair(console: Console) -> None:
    repaired = events(console.world, "fixity-repaired")[0].payload
    caught = events(console.world, "replica-caught-up")[0].payload
    for user in ("opal", "audra"):
        with console.signed_in(user) as c:
            r = c.get("/copies")
        assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"
        page = text(r.text)
        offsite = text(re.search(r'<tr id="copy-offsite">.*?</tr>', r.text, re.S).group(0))
        assert "primary" in page and "文件系统" in offsite and f"（{caught['objects']} 个对象）" in offsite
        assert "通过" in offsite  # the fixity check of the copy, after its repair
        table = re.search(r'<table class="repairs">.*?</table>', r.text, re.S).group(0)
        assert repaired["key"] in table and "A-OBJECT-CHANGED" in table and "offsite" in table
        assert 'href="/copies"' in r.text


def test_a_hold_by_unit_covers_the_records_archived_after_it_was_placed(console: Console) -> None:
    later = [r for r in records(console.world) if r.agency == HB and r.state == MatterState.VERIFIED]
    assert later, "the second night archived the unit's matters"
    with console.signed_in("audra") as auditor:
        page = auditor.get("/holds").text
    row = re.search(r'<tr id="hold-1">.*?</tr>', page, re.S).group(0)
    assert f"实施机构：{HB}" in row and "环保督察 审计调查" in row and "carol" in row
    assert f"{len(later)} 件" in row and all(r.archival_code in row for r in later)
    assert 'action="/holds"' not in page and "解除冻结" not in page  # an auditor only reads
    _code, out = cli(console.world, "disposition", "holds")
    assert sorted(out["holds"][0]["archival_codes"]) == sorted(r.archival_code for r in later)


def _named(world: Path) -> MatterRecord:
    """A record due for appraisal whose 题名 carries the applicant's name (a person's, to be masked)."""
    for r in records(world):
        name = ((r.record or {}).get("applicant") or {}).get("name") or ""
        if (r.state == MatterState.VERIFIED and r.retention_period != "Y" and r.agency != HB
                and len(name) >= 2 and name in (r.title or "")):
            return r
    raise AssertionError("no archived record names its applicant in its 题名")


def test_archivists_place_and_release_holds_with_a_reason_and_the_forms_token(console: Console) -> None:
    record = _named(console.world)
    name = record.record["applicant"]["name"]
    reason = f"诉讼 (2026)浙0106民初123号 {name}"
    form = {"codes": record.archival_code, "reason": reason}
    with console.signed_in("audra") as auditor:
        token = csrf_of(auditor.get("/holds").text)
        assert auditor.post("/holds", data={**form, "csrf": token}).status_code == 403  # not an archivist's
    with console.signed_in("archie") as archie:
        assert archie.post("/holds", data=form).status_code == 403  # no token: a form from elsewhere
        token = csrf_of(archie.get("/holds").text)
        refused = archie.post("/holds", data={"codes": "Z999-没有-0001", "reason": "x", "csrf": token})
        assert refused.status_code == 409 and "D-NO-RECORDS" in refused.text
        (console.world / "copy2").rename(console.world / "copy2-unmounted")
        try:  # a hold must reach every copy: refused, and nothing recorded
            refused = archie.post("/holds", data={**form, "csrf": token})
        finally:
            (console.world / "copy2-unmounted").rename(console.world / "copy2")
        assert refused.status_code == 409 and "offsite" in refused.text
        assert len(events(console.world, "hold-placed")) == 1
        r = archie.post("/holds", data={**form, "csrf": token})
        assert r.status_code == 303, r.text
        page = archie.get(r.headers["location"]).text
        assert "已冻结（编号 2）：1 件档案" in page and "以账本冻结为准" in page
        row = re.search(r'<tr id="hold-2">.*?</tr>', page, re.S).group(0)
        assert reason in row and "archie" in row and record.archival_code in row
    with console.signed_in("audra") as auditor:
        masked = re.search(r'<tr id="hold-2">.*?</tr>', auditor.get("/holds").text, re.S).group(0)
    assert name not in masked and name[0] + "＊" in masked
    placed = events(console.world, "hold-placed")[-1].payload
    assert placed["by"] == "archie" and placed["archival_codes"] == [record.archival_code]

    with console.signed_in("archie") as archie:
        token = csrf_of(archie.get("/holds").text)
        assert archie.post("/holds/2/release", data={"csrf": token, "reason": " "}).status_code == 409  # D-NO-REASON
        r = archie.post("/holds/2/release", data={"csrf": token, "reason": "结案"})
        assert r.status_code == 303
        page = archie.get("/holds").text
    released = re.search(r'<table class="holds released">.*?</table>', page, re.S).group(0)
    assert "结案" in released and record.archival_code in released
    assert events(console.world, "hold-released")[-1].payload["by"] == "archie"


@pytest.fixture(scope="module")
def appraised(console: Console) -> dict[str, Any]:
    """An appraisal opened and decided from the console, one record decided by `vera` on the command
    line: what the approval tests need."""
    with console.signed_in("archie") as archie:
        token = csrf_of(archie.get("/appraisals").text)
        r = archie.post("/appraisals", data={"csrf": token, "before": "2100-01-01"})
        assert r.status_code == 303, r.text
        review = int(re.search(r"/appraisals/(\d+)", r.headers["location"]).group(1))
    items = events(console.world, "disposition-opened")[-1].payload["archival_codes"]
    return {"review": review, "codes": items}


def test_an_archivist_opens_and_decides_and_a_held_record_is_refused(console: Console,
                                                                      appraised: dict[str, Any]) -> None:
    review, codes = appraised["review"], appraised["codes"]
    rows = {r.archival_code: r for r in records(console.world)}
    held = sorted(c for c in codes if rows[c].agency == HB)
    free = sorted(c for c in codes if rows[c].agency != HB)
    assert held and len(free) >= 3 and not any(rows[c].retention_period == "Y" for c in codes)
    with console.signed_in("archie") as archie:
        page = archie.get(f"/appraisals/{review}").text
        assert all(c in page for c in codes) and page.count("冻结中") == len(held)
        assert "审批通过" not in page  # an archivist appraises; the approver approves
        token = csrf_of(page)
        r = archie.post(f"/appraisals/{review}/decide",
                        data={"csrf": token, "code": held[:1], "decision": "destroy", "reason": "到期"})
        assert r.status_code == 409 and "D-HELD" in r.text and "冻结" in r.text
        r = archie.post(f"/appraisals/{review}/decide", data={"csrf": token, "code": held, "decision": "extend",
                                                              "period": "Y", "reason": "督察仍在进行"})
        assert r.status_code == 303, r.text
        r = archie.post(f"/appraisals/{review}/decide",
                        data={"csrf": token, "code": free[1:], "decision": "destroy", "reason": "到期，无继续保存价值"})
        assert r.status_code == 303, r.text
        assert archie.get(f"/appraisals/{review}/destruction-list.pdf").status_code == 409  # not approved yet
        assert archie.post(f"/appraisals/{review}/approve", data={"csrf": token}).status_code == 403  # role
    named = _named(console.world)
    name = named.record["applicant"]["name"]
    with console.signed_in("audra") as auditor:
        masked = auditor.get(f"/appraisals/{review}")
    assert masked.status_code == 200 and named.archival_code in masked.text
    assert name not in masked.text and name[0] + "＊" in masked.text  # 题名 carries the applicant's name
    assert "记录结论" not in masked.text and "审批通过" not in masked.text  # the auditor only reads
    code, out = cli(console.world, "disposition", "decide", str(review), "destroy", "--code", free[0],
                    "--reason", "到期", "--user", "vera")
    assert code == 0, out
    decided = [e.payload for e in events(console.world, "disposition-decided")]
    assert {d["by"] for d in decided} == {"archie", "vera"} and len(decided) == len(codes)


def test_the_approver_who_decided_a_record_is_refused_and_another_approves(console: Console,
                                                                         appraised: dict[str, Any]) -> None:
    review = appraised["review"]
    with console.signed_in("vera") as vera:
        page = vera.get(f"/appraisals/{review}").text
        assert "审批通过" in page and "审批须由另一人进行" in page
        r = vera.post(f"/appraisals/{review}/approve", data={"csrf": csrf_of(page)})
    assert r.status_code == 403 and "审批人不得与鉴定人相同" in r.text and "D-SAME-USER" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert not events(console.world, "disposition-approved")
    with console.signed_in("ward") as ward:
        page = ward.get(f"/appraisals/{review}").text
        assert "审批须由另一人进行" not in page
        assert ward.post(f"/appraisals/{review}/approve", data={"csrf": "forged"}).status_code == 403
        r = ward.post(f"/appraisals/{review}/approve", data={"csrf": csrf_of(page)})
        assert r.status_code == 303, r.text
        page = text(ward.get(r.headers["location"]).text)
    assert "已审批" in page and "ward" in page and "审批通过" not in page
    approved = events(console.world, "disposition-approved")[-1].payload
    assert approved["by"] == "ward" and set(approved["appraisers"]) == {"archie", "vera"}
    extended = {r.archival_code: r.retention_period for r in records(console.world) if r.agency == HB}
    assert {extended[c] for c in approved["extend"]} == {"Y"}


def test_the_destruction_list_downloads_as_an_a4_pdf_and_a_masked_page(console: Console,
                                                                      appraised: dict[str, Any]) -> None:
    review = appraised["review"]
    destroy = events(console.world, "disposition-approved")[-1].payload["destroy"]
    with console.signed_in("audra") as auditor:
        pdf = auditor.get(f"/appraisals/{review}/destruction-list.pdf")
        page = auditor.get(f"/appraisals/{review}/destruction-list.html")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "attachment" in pdf.headers["content-disposition"]
    reader = PdfReader(io.BytesIO(pdf.content))
    for p in reader.pages:
        assert (round(float(p.mediabox.width), 2), round(float(p.mediabox.height), 2)) == A4
    listed = "".join(p.extract_text() for p in reader.pages)
    assert "档案销毁清单" in listed and "ward" in listed
    assert page.status_code == 200 and all(c in page.text for c in destroy)
    named = _named_in(console.world, destroy)
    assert named, "no record to destroy names its applicant in its 题名"
    assert named not in page.text and named[0] + "＊" in page.text  # the auditor sees names masked


def _named_in(world: Path, codes: list[str]) -> str | None:
    for r in records(world):
        name = ((r.record or {}).get("applicant") or {}).get("name") or ""
        if r.archival_code in codes and len(name) >= 2 and name in (r.title or ""):
            return name
    return None


def test_a_destroyed_records_page_is_a_tombstone_and_search_marks_it(console: Console,
                                                                    appraised: dict[str, Any]) -> None:
    review = appraised["review"]
    code, out = cli(console.world, "disposition", "destroy", str(review), "--user", "erin")
    assert code == 0 and out["destroyed"], out
    gone = next(r for r in records(console.world) if r.archival_code == out["destroyed"][0])
    assert gone.state == MatterState.DESTROYED
    with console.signed_in("archie") as archie:
        r = archie.get(f"/matter/{gone.id}")
        assert r.status_code == 200
        page = text(r.text)
        assert "已销毁" in page and "erin" in page and "ward" in page and f"鉴定 {review}" in page
        assert "元数据" in page and "检测报告" in page and "_DESTROYED" in page
        assert "/file/" not in r.text  # no document links
        for kind in ("original", "access"):
            refused = archie.get(f"/matter/{gone.id}/file/1/{kind}")
            assert refused.status_code == 410 and "已销毁" in refused.text
        found = archie.get("/search", params={"code": gone.archival_code}).text
    row = re.search(rf'<tr class="destroyed">.*?{re.escape(gone.archival_code)}.*?</tr>', found, re.S)
    assert row is not None and "已销毁" in row.group(0)
    tomb = events(console.world, "destroyed")[0].payload["tombstone"]
    assert all(f["sha256"] in r.text for f in tomb["deleted"])  # the digests of what was deleted, kept
