"""What real departmental data does to a night.

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
import logging
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState, QuarantineEntry, Run
from night import fanout as night_fanout
from night import staging as night_staging
from night import transferring as night_transferring
from night.engine import run_nightly
from schemas.config import load_settings
from tests.world_support import Outcome, outcome

SOURCES = ["sjjc", "tzxm"]


def night(world: Path, config: str = "guidang.yaml", **kwargs: Any) -> dict[str, Any]:
    return run_nightly(load_settings(world / config), sources=SOURCES, **kwargs)


def ledger(world: Path) -> Session:
    return Session(create_engine(f"sqlite:///{world / 'ledger.sqlite'}"))




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


def metadata_text(world: Path, package_key: str, path: str) -> str:
    root = etree.parse(str(world / "archive" / package_key / "元数据.xml")).getroot()
    found = root.xpath(f"//*[local-name()='{path.split('/')[-1]}']")
    assert found, f"{path} missing in {package_key}"
    return found[0].text or ""


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


# -- one matter never stops a night

LONG_NAME = "检查现场照片" * 170 + ".pdf"  # 1,024 characters, over 3,000 bytes: no file system takes it

FAILURES = {
    # staging the documents: what `open(…/1,000-character name)` raises on every common file system
    "staging-OSError": (
        night_staging,
        "stage_matter",
        OSError(errno.ENAMETOOLONG, "File name too long", f"/staging/run/m-1/过程材料/{LONG_NAME}"),
        "OSError",
    ),
    # a bug inside the 四性检测 precheck, before a 件号 is given
    "precheck-bug": (night_staging, "finalize_package", KeyError("GD-9-9"), "KeyError"),
    # a bug while building the package with its real 档号, after numbering
    "finalize-bug": (night_transferring, "finalize_package", ZeroDivisionError("division by zero"),
                     "ZeroDivisionError"),
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
    from night.quarantine_retry import retry_quarantined

    retried = retry_quarantined(load_settings(small_world / "guidang.yaml"))
    assert retried["status"] == "completed" and retried["totals"]["archived"] == 1
    assert ("sjjc", victim) in outcome(small_world)[0]


def test_a_document_name_of_a_thousand_characters_never_blocks_its_source(
    small_world: Path, clean: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the name really reaches the staging folder (or is made safe
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


def test_a_full_staging_disk_fails_the_source_and_blames_no_matter(
    small_world: Path, clean: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No space left is the machine's fault: quarantining matter after matter for it would bury the
    cause; the source fails for the night, and the next night archives what it would have."""
    victim = first_good(clean)
    full = OSError(errno.ENOSPC, "No space left on device", "/staging/run/m-1/过程材料/a.pdf")
    monkeypatch.setattr(night_staging, "stage_matter", failing_for(victim, night_staging.stage_matter, full))
    summary = night(small_world)
    assert summary["status"] == "failed"
    assert "No space left on device" in summary["sources"]["sjjc"]["error"]
    assert run_statuses(small_world) == ["failed"]
    assert all("Q-STAGE-FAILED" not in codes for codes in outcome(small_world)[1].values())
    monkeypatch.undo()
    assert night(small_world)["status"] == "completed"
    assert outcome(small_world) == clean


def test_a_source_that_breaks_outright_fails_the_run_and_never_leaves_it_running(
    small_world: Path, clean: Outcome, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = night_fanout.collect_matters

    def collect(ctx: Any, source: Any, since: datetime, until: datetime) -> Any:
        if source.name == "sjjc":
            raise AttributeError("'NoneType' object has no attribute 'fetchall'")  # a bug, not a GuidangError
        return real(ctx, source, since, until)

    monkeypatch.setattr(night_fanout, "collect_matters", collect)
    summary = night(small_world)
    assert summary["status"] == "failed"
    assert "AttributeError" in summary["sources"]["sjjc"]["error"]
    assert run_statuses(small_world) == ["failed"]
    verified, _ = outcome(small_world)
    assert {k for k in clean[0] if k[0] == "tzxm"} <= verified  # the other source still ran

    monkeypatch.undo()
    assert night(small_world)["status"] == "completed"  # and the next night takes the source up again
    assert outcome(small_world)[0] == clean[0]


# -- one 办件编号 twice in one collect


def resend_row(world: Path, project_id: str, *, conclusion: str, later_by_seconds: int) -> Path:
    """The sjjc system without its primary key, holding a corrected copy of one row; returns the
    config that reads it (the source's query in its given order, rowid breaking ties)."""
    with sqlite3.connect(world / "sources" / "sjjc.sqlite") as db:
        db.execute("CREATE TABLE record_nopk AS SELECT * FROM inspection_record ORDER BY modified_at, record_no")
        db.execute(
            "INSERT INTO record_nopk SELECT record_no, task_no, target_name, target_kind, target_id_type,"
            " target_id_no, inspectors, accepted_at, inspected_at, completed_at, ?, status,"
            " CASE WHEN ? = 0 THEN modified_at ELSE strftime('%Y-%m-%d %H:%M:%f', modified_at, ? || ' seconds') END"
            " FROM inspection_record WHERE record_no = ?",
            (conclusion, later_by_seconds, str(later_by_seconds), project_id),
        )
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    sjjc = next(s for s in config["sources"] if s["name"] == "sjjc")
    sjjc["matters_query"] = (
        sjjc["matters_query"]
        .replace("inspection_record r", "record_nopk r")
        .replace("ORDER BY r.modified_at, r.record_no", "ORDER BY r.modified_at, r.record_no, r.rowid")
    )
    path = world / "guidang-nopk.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("later_by_seconds", [60, 0], ids=["newer-update-time", "same-update-time-later-row"])
def test_a_corrected_row_sent_twice_in_one_collect_archives_the_correction(
    later_by_seconds: int, small_world: Path, clean: Outcome, caplog: pytest.LogCaptureFixture
) -> None:
    victim = first_good(clean)
    config = resend_row(small_world, victim, conclusion="更正：发现问题已当场整改", later_by_seconds=later_by_seconds)

    with caplog.at_level(logging.WARNING, logger="guidang"):
        summary = night(small_world, config.name)

    assert summary["status"] == "completed"
    assert outcome(small_world) == clean  # the same matters archived and held: nothing doubled, nothing lost
    with ledger(small_world) as s:
        rows = list(s.scalars(select(MatterRecord).where(MatterRecord.project_id == victim)))
    assert [(r.version, r.state) for r in rows] == [(1, MatterState.VERIFIED)]
    assert rows[0].record["result"] == "更正：发现问题已当场整改"  # the correction reached the archive
    assert metadata_text(small_world, rows[0].package_key, "办理结果") == "更正：发现问题已当场整改"
    counts = summary["sources"]["sjjc"]
    assert counts["superseded"] == 1  # the older row is counted, so the counts add up to what was collected
    assert counts["collected"] == sum(
        counts[k] for k in ("archived", "quarantined", "not_in_scope", "waiting", "unchanged", "pending", "superseded")
    )
    warned = [r.getMessage() for r in caplog.records if victim in r.getMessage() and "superseded" in r.getMessage()]
    assert warned, "the dropped older row is never dropped silently"


# -- completed after the run's time


def test_a_matter_completed_in_2031_is_quarantined_and_never_archived_before_its_completion(
    small_world: Path, clean: Outcome
) -> None:
    victim = first_good(clean)
    with sqlite3.connect(small_world / "sources" / "sjjc.sqlite") as db:
        db.execute("UPDATE inspection_record SET completed_at = '2031-03-01 09:30:00.000000' WHERE record_no = ?",
                   (victim,))

    summary = night(small_world)

    assert summary["status"] == "completed"
    verified, held = outcome(small_world)
    assert verified == clean[0] - {("sjjc", victim)}
    assert held == clean[1] | {("sjjc", victim): ["Q-COMPLETED-IN-FUTURE"]}
    finding = open_entry(small_world, "sjjc", victim).findings[0]
    assert victim in finding["where"]
    assert "2031-03-01" in finding["message"]  # 办结时间 as the source gave it
    as_of = datetime.fromisoformat(summary_as_of(small_world)).astimezone(load_tz(small_world))
    assert as_of.isoformat() in finding["message"]  # and the run's time it is later than

    with ledger(small_world) as s:
        stored = list(s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)))
    assert stored
    for rec in stored:
        completed = datetime.fromisoformat(metadata_text(small_world, rec.package_key, "办结时间"))
        archived = datetime.fromisoformat(metadata_text(small_world, rec.package_key, "归档时间"))
        assert archived >= completed, rec.archival_code


def test_a_backfill_as_of_a_past_time_quarantines_what_was_completed_after_it(
    small_world: Path, clean: Outcome
) -> None:
    """--as-of in the past: a matter completed after that time is not archived with an earlier 归档时间."""
    with sqlite3.connect(small_world / "sources" / "sjjc.sqlite") as db:
        times = sorted(r[0] for r in db.execute("SELECT completed_at FROM inspection_record WHERE status = 'closed'"))
    tz = load_tz(small_world)
    as_of = datetime.fromisoformat(times[len(times) // 2]).replace(tzinfo=tz)
    until = datetime.fromisoformat(times[-1]).replace(tzinfo=tz) + timedelta(days=1)
    summary = night(small_world, since=datetime(2000, 1, 1, tzinfo=tz), until=until, now=as_of)
    with ledger(small_world) as s:
        stored = list(s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)))
    for rec in stored:
        assert rec.completed_at <= rec.numbered_at, rec.archival_code
    assert summary["quarantine_reasons"].get("Q-COMPLETED-IN-FUTURE", 0) >= 1


def summary_as_of(world: Path) -> str:
    with ledger(world) as s:
        return s.scalars(select(Run)).one().parameters["as_of"]


def load_tz(world: Path) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(load_settings(world / "guidang.yaml").timezone)


def test_a_chunk_writes_no_completion_marker_before_its_files_are_durable_nor_records_one_before_its_marker(
    small_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash order of a chunk's store, as the file system sees it: every package's files are
    linked into the archive, then one syncfs makes them and their folders durable, then the markers
    (_COMPLETE) are linked, one more syncfs, and only then does the ledger record the packages. A
    marker that could outlive one of its files in a power cut would vouch for a package that is not
    there."""
    import os

    from connectors.repositories import fs_durable
    from schemas.layout import COMPLETION_MARKER

    syncfs = fs_durable._syncfs()
    if syncfs is None:
        pytest.skip("no usable syncfs (Linux >= 5.8): every folder is fsynced by itself")
    archive = (small_world / "archive").resolve()
    seen: list[str] = []
    real_link, real_record = os.link, night_transferring.record_verified

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        real_link(src, dst, *args, **kwargs)
        where = Path(dst).resolve()
        if where.is_relative_to(archive) and where.relative_to(archive).parts[0] not in ("transfers", "checkpoints"):
            seen.append("marker" if where.name == COMPLETION_MARKER else "file")  # a package's

    def recording_syncfs(fd: int) -> int:
        seen.append("sync")
        return syncfs(fd)

    def record(ctx: Any, packages: list[Any]) -> None:
        if packages:
            seen.append(f"record {len(packages)}")
        real_record(ctx, packages)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(fs_durable, "_syncfs", lambda: recording_syncfs)
    monkeypatch.setattr(night_transferring, "record_verified", record)

    assert night(small_world)["status"] == "completed"

    chunks, start = [], 0
    for i, step in enumerate(seen):
        if step.startswith("record"):
            chunks.append((seen[start:i], int(step.split()[1])))
            start = i + 1
    assert chunks and not [s for s in seen[start:] if s != "sync"], seen
    for steps, recorded in chunks:
        links = [s for s in steps if s != "sync"]
        assert links.count("marker") == recorded, steps
        first_marker = links.index("marker")
        assert all(s == "file" for s in links[:first_marker]) and set(links[first_marker:]) == {"marker"}, steps
        # a sync between the last file and the first marker, and after the last marker
        between = steps[len(steps) - steps[::-1].index("file"):steps.index("marker")]
        assert "sync" in between and steps[-1] == "sync", steps
