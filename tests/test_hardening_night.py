"""What real departmental data does to a night (issue 11, points 1, 3 and 4).

- One matter never stops a night: a failure while staging, prechecking or finalizing one matter
  (an OSError such as `File name too long`, a bug-level exception) quarantines that matter with
  Q-STAGE-FAILED and the others are archived; a source that fails outright fails the run, which
  is closed either way, never left `running`.
- A 办件编号 given twice in one collect (a corrected row re-sent by a system without a primary
  key): the newest row is archived and the older one is counted as superseded, never silently.
- A matter completed after the run's time is quarantined with Q-COMPLETED-IN-FUTURE; no package
  has 归档时间 earlier than 办结时间.

The nights run over the small demo world's two self-built systems (SQLite, no simulator needed).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

import flows.night
import flows.staging
import flows.transfer
import flows.triage
from flows.night import run_nightly
from ledger.models import MatterRecord, MatterState, QuarantineEntry, Run
from schemas.config import load_settings

SOURCES = ["sjjc", "tzxm"]
Outcome = tuple[set[tuple[str, str]], dict[tuple[str, str], list[str]]]


def night(world: Path, config: str = "guidang.yaml", **kwargs: Any) -> dict[str, Any]:
    return run_nightly(load_settings(world / config), sources=SOURCES, **kwargs)


def ledger(world: Path) -> Session:
    return Session(create_engine(f"sqlite:///{world / 'ledger.sqlite'}"))


def outcome(world: Path) -> Outcome:
    """(verified matters, open quarantine entries with their codes), by (source, project id)."""
    with ledger(world) as s:
        verified = {
            (r.source, r.project_id)
            for r in s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED))
        }
        held = {
            (q.source, q.project_id): q.codes
            for q in s.scalars(select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None)))
        }
    return verified, held


def open_entry(world: Path, source: str, project_id: str) -> QuarantineEntry:
    with ledger(world) as s:
        entry = s.scalars(
            select(QuarantineEntry).where(
                QuarantineEntry.source == source,
                QuarantineEntry.project_id == project_id,
                QuarantineEntry.resolved_at.is_(None),
            )
        ).one()
        s.expunge(entry)
    return entry


def run_statuses(world: Path) -> list[str]:
    with ledger(world) as s:
        return [r.status for r in s.scalars(select(Run))]


@pytest.fixture(scope="module")
def clean(small_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """What a night with nothing forced wrong archives and holds."""
    world = tmp_path_factory.mktemp("clean-selfbuilt") / "world"
    shutil.copytree(small_pristine, world)
    assert night(world)["status"] == "completed"
    return outcome(world)


def first_good(clean: Outcome, source: str = "sjjc") -> str:
    return sorted(pid for src, pid in clean[0] if src == source)[0]


def failing_for(project_id: str, original: Callable[..., Any], exc: BaseException) -> Callable[..., Any]:
    """`original`, except that it raises `exc` for the matter (or staged matter) `project_id`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        first = args[0]
        matter = getattr(first, "matter", first)
        if matter.project_id == project_id:
            raise exc
        return original(*args, **kwargs)

    return wrapper


# ------------------------------------------------------------------ 1. one matter never stops a night

LONG_NAME = "检查现场照片" * 170 + ".pdf"  # 1,024 characters, over 3,000 bytes: no file system takes it

FAILURES = {
    # staging the documents: what `open(…/1,000-character name)` raises on every common file system
    "staging-OSError": (
        flows.triage,
        "stage_matter",
        OSError(errno.ENAMETOOLONG, "File name too long", f"/staging/run/m-1/过程材料/{LONG_NAME}"),
        "OSError",
    ),
    # a bug inside the 四性检测 precheck, before a 件号 is given
    "precheck-bug": (flows.staging, "finalize_package", KeyError("GD-9-9"), "KeyError"),
    # a bug while building the package with its real 档号, after numbering
    "finalize-bug": (flows.transfer, "finalize_package", ZeroDivisionError("division by zero"), "ZeroDivisionError"),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_failure_inside_one_matter_quarantines_it_and_the_night_archives_the_rest(
    case: str, small_world: Path, clean: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, name, exc, exc_class = FAILURES[case]
    victim = first_good(clean)
    monkeypatch.setattr(module, name, failing_for(victim, getattr(module, name), exc))

    summary = night(small_world)

    assert summary["status"] == "completed"
    assert run_statuses(small_world) == ["completed"]
    verified, held = outcome(small_world)
    good, defects = clean
    assert verified == good - {("sjjc", victim)}  # every other matter of the source, and the other source
    assert held == defects | {("sjjc", victim): ["Q-STAGE-FAILED"]}
    finding = open_entry(small_world, "sjjc", victim).findings[0]
    assert exc_class in finding["message"] and victim in finding["where"]
    assert "/staging/run" not in finding["message"]  # no path of the machine, only the package's own
    assert summary["sources"]["sjjc"]["quarantine_reasons"]["Q-STAGE-FAILED"] == 1
    if case == "finalize-bug":  # numbered already: the 件号 stays with the row, which says why
        with ledger(small_world) as s:
            row = s.scalars(select(MatterRecord).where(MatterRecord.project_id == victim)).one()
        assert row.state == MatterState.QUARANTINED and row.item_number is not None

    # the cause is gone: the next night leaves it held (unchanged), and a retry archives it
    monkeypatch.undo()
    from flows.retry import retry_quarantined

    retried = retry_quarantined(load_settings(small_world / "guidang.yaml"))
    assert retried["status"] == "completed" and retried["totals"]["archived"] == 1
    assert ("sjjc", victim) in outcome(small_world)[0]


def test_a_document_name_of_a_thousand_characters_never_blocks_its_source(
    small_world: Path, clean: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case end to end: the name really reaches the staging folder (or is made safe
    there by the naming rules), and either way the night completes and the source moves on."""
    victim = first_good(clean)
    with sqlite3.connect(small_world / "sources" / "sjjc.sqlite") as db:
        db.execute(
            "UPDATE attachment SET original_name = ? WHERE att_id = (SELECT MIN(att_id) FROM attachment"
            " WHERE record_no = ?)",
            (LONG_NAME, victim),
        )
    summary = night(small_world)
    assert summary["status"] == "completed"
    assert run_statuses(small_world) == ["completed"]
    verified, held = outcome(small_world)
    others = {k for k in clean[0] if k != ("sjjc", victim)}
    assert others <= verified
    assert ("sjjc", victim) in verified or held.get(("sjjc", victim)) == ["Q-STAGE-FAILED"]


def test_a_source_that_breaks_outright_fails_the_run_and_never_leaves_it_running(
    small_world: Path, clean: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = flows.night.collect_matters

    def collect(ctx: Any, source: Any, since: datetime, until: datetime) -> Any:
        if source.name == "sjjc":
            raise AttributeError("'NoneType' object has no attribute 'fetchall'")  # a bug, not a GuidangError
        return real(ctx, source, since, until)

    monkeypatch.setattr(flows.night, "collect_matters", collect)
    summary = night(small_world)
    assert summary["status"] == "failed"
    assert "AttributeError" in summary["sources"]["sjjc"]["error"]
    assert run_statuses(small_world) == ["failed"]
    verified, _ = outcome(small_world)
    assert {k for k in clean[0] if k[0] == "tzxm"} <= verified  # the other source still ran

    monkeypatch.undo()
    assert night(small_world)["status"] == "completed"  # and the next night takes the source up again
    assert outcome(small_world)[0] == clean[0]
