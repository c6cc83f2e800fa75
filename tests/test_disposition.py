"""Holds (冻结), appraisal (到期鉴定) with a second person's approval, the 销毁清单 and the destruction,
after one real demo night on the filesystem: what a user of `guidang disposition` sees and what the
archive holds afterwards, checked with `audit verify` and `audit fixity` and by reading the folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app
from ledger import disposition_rules
from ledger.models import Event, MatterRecord, MatterState
from ledger.store import Ledger
from night.engine import run_nightly
from schemas.config import load_settings
from schemas.layout import METADATA_FILE
from tests.world_support import unified_running

runner = CliRunner(env={"GUIDANG_CONFIG": None, "GUIDANG_USER": None})
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def archived_pristine(small_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = tmp_path_factory.mktemp("disposition") / "world"
    shutil.copytree(small_pristine, world)
    with unified_running(world):
        summary = run_nightly(load_settings(world / "guidang.yaml"))
    assert summary["status"] == "completed" and summary["totals"]["archived"] > 10
    return world


@pytest.fixture
def archived(archived_pristine: Path, tmp_path: Path) -> Path:
    world = tmp_path / "world"
    shutil.copytree(archived_pristine, world)
    return world


def cli(world: Path, *args: str, user: str | None = None) -> tuple[int, Any]:
    extra = ["--user", user] if user else []
    r = runner.invoke(app, [*args, "--config", str(world / "guidang.yaml"), *extra, "--json"])
    try:
        return r.exit_code, json.loads(r.stdout)
    except ValueError:
        return r.exit_code, r.output


def rows(world: Path) -> list[MatterRecord]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        out = list(s.scalars(select(MatterRecord).where(MatterRecord.archival_code.is_not(None))
                             .order_by(MatterRecord.archival_code)))
        s.expunge_all()
    engine.dispose()
    return out


def kinds(world: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        out = list(s.scalars(select(Event.kind).order_by(Event.seq)))
    engine.dispose()
    return out


def audited(world: Path) -> dict[str, Any]:
    code, verify = cli(world, "audit", "verify")
    assert code == 0, verify
    assert verify["destroyed"] == sum(r.state == MatterState.DESTROYED for r in rows(world))
    code, fixity = cli(world, "audit", "fixity")
    assert code == 0 and fixity["ok"], fixity["findings"]
    return fixity


def test_hold_appraise_approve_destroy(archived: Path) -> None:
    archive = archived / "archive"
    verified = [r for r in rows(archived) if r.state == MatterState.VERIFIED]
    permanent = [r for r in verified if r.retention_period == "Y"]
    due = [r for r in verified if r.retention_period != "Y"]
    assert permanent and len(due) >= 3

    code, opened = cli(archived, "disposition", "open", "--before", "2100-01-01", user="alice")
    assert code == 0, opened
    assert sorted(opened["archival_codes"]) == sorted(r.archival_code for r in due)  # 永久 never falls due
    review = str(opened["review"])
    held, extended, *rest = due

    code, out = cli(archived, "disposition", "hold", "--code", held.archival_code, "--reason", "诉讼 in court",
                    user="carol")
    assert code == 0 and out["archival_codes"] == [held.archival_code]
    assert "no legal hold" in out["notes"][0]  # a filesystem: the ledger's hold alone
    code, out = cli(archived, "disposition", "decide", review, "destroy", "--code", held.archival_code,
                    "--reason", "到期无保存价值", user="alice")
    assert code == 1 and "D-HELD" in out, out
    code, out = cli(archived, "disposition", "holds")
    assert [h["reason"] for h in out["holds"]] == ["诉讼 in court"] and out["holds"][0]["placed_by"] == "carol"

    # 永久 is refused by the rule itself, whoever asks and however the record got there
    with Ledger(f"sqlite:///{archived / 'ledger.sqlite'}") as led, led.read() as s:
        rec = s.get(MatterRecord, permanent[0].id)
        with pytest.raises(disposition_rules.DispositionRefused, match="D-PERMANENT"):
            disposition_rules.check_destroyable(s, rec)

    code, out = cli(archived, "disposition", "release", str(out["holds"][0]["hold"]),
                    "--reason", "case closed", user="carol")
    assert code == 0, out
    everyone = [held, *rest]
    code, out = cli(archived, "disposition", "decide", review, "destroy", "--reason", "到期无保存价值",
                    *[a for r in everyone for a in ("--code", r.archival_code)], user="alice")
    assert code == 0, out
    code, out = cli(archived, "disposition", "decide", review, "extend", "--code", extended.archival_code,
                    "--period", "D10", "--reason", "no longer", user="bob")
    assert code == 1 and "D-BAD-EXTENSION" in out
    code, out = cli(archived, "disposition", "decide", review, "extend", "--code", extended.archival_code,
                    "--period", "Y", "--reason", "具有长远利用价值", user="bob")
    assert code == 0, out

    for same in ("alice", "bob"):  # an appraiser never approves
        code, out = cli(archived, "disposition", "approve", review, user=same)
        assert code == 1 and "D-SAME-USER" in out, out
    code, out = cli(archived, "disposition", "approve", review, user="dave")
    assert code == 0 and sorted(out["destroy"]) == sorted(r.archival_code for r in everyone), out
    after = {r.archival_code: r for r in rows(archived)}
    assert after[extended.archival_code].retention_period == "Y"
    assert after[extended.archival_code].disposition_date is None

    page, pdf = archived / "销毁清单.html", archived / "销毁清单.pdf"
    code, out = cli(archived, "disposition", "list", review, "--html", str(page), "--pdf", str(pdf))
    assert code == 0 and len(out["rows"]) == len(everyone)
    reader = PdfReader(pdf)
    assert [round(float(x)) for x in reader.pages[0].mediabox[2:]] == [595, 842]  # A4 in points
    printed = "".join(p.extract_text() for p in reader.pages)
    assert "档案销毁清单" in printed and "监销人" in printed and "dave" in printed
    assert all(r.archival_code in printed for r in everyone) and extended.archival_code not in printed
    text = page.read_text(encoding="utf-8")
    assert "size: A4" in text and "档案销毁清单" in text and "监销人（签字）" in text
    assert all(r.archival_code in text for r in everyone) and extended.archival_code not in text
    assert "alice" in text and "dave" in text

    code, out = cli(archived, "disposition", "destroy", review, user="erin")
    assert code == 0 and sorted(out["destroyed"]) == sorted(r.archival_code for r in everyone), out
    for r in everyone:
        folder = archive / r.package_key
        left = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        assert METADATA_FILE in left and "_DESTROYED" in left and not any(p.endswith(".pdf") for p in left), left
        tomb = json.loads((folder / "_DESTROYED").read_text(encoding="utf-8"))
        assert tomb["approved_by"] == "dave" and tomb["deleted"] and tomb["archival_code"] == r.archival_code
    assert any((archive / extended.package_key).rglob("*.pdf"))  # the extended one keeps everything
    assert {r.archival_code for r in rows(archived) if r.state == MatterState.DESTROYED} == \
        {r.archival_code for r in everyone}
    for kind in ("hold-placed", "hold-released", "disposition-opened", "disposition-decided", "retention-extended",
                 "disposition-approved", "destruction-begun", "destroyed", "disposition-completed"):
        assert kind in kinds(archived), kind

    fixity = audited(archived)
    assert fixity["destroyed"] == len(everyone) and fixity["missing"] == 0
    # the batch's catalogue is marked: a 销毁记录 beside it, and its register shows the records 已销毁
    batch = everyone[0].batch_id
    assert batch
    note = json.loads((archive / "transfers" / batch / f"销毁记录-{review}.json").read_text(encoding="utf-8"))
    assert everyone[0].archival_code in [d["archival_code"] for d in note["destroyed"]]
    assert note["approved_by"] == "dave"
    code, reg = cli(archived, "audit", "register", "--batch", batch)
    assert code == 0 and reg["agrees"], reg["problems"]
    marked = {row["档号"]: row["题名"] for row in reg["catalogue"]}
    assert marked[everyone[0].archival_code].endswith("（已销毁）")
    # a document of a destroyed record that is back is reported, not taken for ours
    (archive / everyone[0].package_key / "申报材料").mkdir(exist_ok=True)
    tomb = json.loads((archive / everyone[0].package_key / "_DESTROYED").read_text(encoding="utf-8"))
    back = archive / everyone[0].package_key / tomb["deleted"][0]["path"]
    back.parent.mkdir(parents=True, exist_ok=True)
    back.write_bytes(b"%PDF-1.4 resurrected")
    code, out = cli(archived, "audit", "fixity")
    assert code == 1 and [f["code"] for f in out["findings"]] == ["A-DESTRUCTION-OUTSTANDING"]
    # and a destroyed record whose tombstone went missing is named by audit verify
    (archive / everyone[1].package_key / "_DESTROYED").unlink()
    code, out = cli(archived, "audit", "verify")
    assert code == 1 and [(f["code"], f["where"]) for f in out["findings"]] == [
        ("A-OBJECT-MISSING", f"{everyone[1].package_key}/_DESTROYED")]


@pytest.mark.parametrize("point", ["destruction-begun:1", "destroyed-object:2"])
def test_destruction_killed_half_way_resumes(archived: Path, point: str) -> None:
    due = [r for r in rows(archived) if r.state == MatterState.VERIFIED and r.retention_period != "Y"][:2]
    code, opened = cli(archived, "disposition", "open", "--before", "2100-01-01", user="alice")
    review = str(opened["review"])
    code, out = cli(archived, "disposition", "decide", review, "extend", "--period", "Y", "--reason", "keep",
                    *[a for c in opened["archival_codes"] if c not in {r.archival_code for r in due}
                      for a in ("--code", c)], user="alice")
    code, out = cli(archived, "disposition", "decide", review, "destroy", "--reason", "到期",
                    *[a for r in due for a in ("--code", r.archival_code)], user="alice")
    assert code == 0, out
    assert cli(archived, "disposition", "approve", review, user="bob")[0] == 0

    cmd = [sys.executable, "-m", "flows.cli", "disposition", "destroy", review, "--user", "erin",
           "--config", str(archived / "guidang.yaml")]
    killed = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GUIDANG_CRASH_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not any(r.state == MatterState.DESTROYED for r in rows(archived))
    code, out = cli(archived, "audit", "fixity")  # half-deleted, under way: neither missing nor unexpected
    assert code == 0 and out["missing"] == 0, out["findings"]

    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert {r.archival_code for r in rows(archived) if r.state == MatterState.DESTROYED} == \
        {r.archival_code for r in due}
    assert kinds(archived).count("destroyed") == 2 and kinds(archived).count("disposition-completed") == 1
    audited(archived)
