"""What operations read after a night must be what happened: a dry run writes nothing anywhere, rows
no window can collect are counted, still-quarantined matters are held (not unchanged), a failed run
reports what it stored, the printed chain head is the audited one, a half-stored batch is finished."""


from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState, Run
from night.context import RunContext, SourceConfig, SourceSummary
from night.engine import process_source, run_nightly
from schemas.config import load_settings
from schemas.findings import GuidangError
from tests.world_support import count_rows, unified_running

# -- --dry-run writes nothing anywhere


def _tree(root: Path) -> dict[str, int] | None:
    """Every file and folder under `root` with its size (None when `root` does not exist)."""
    if not root.exists():
        return None
    return {p.relative_to(root).as_posix(): (p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")}


def _ledger_state(url: str) -> dict[str, Any]:
    """Row counts of every ledger table and the chain head: what a write of any kind would change."""
    from ledger.models import Base

    engine = create_engine(url)
    try:
        with Session(engine) as s:
            counts = {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
            from ledger import chain

            counts["chain_head"] = chain.chain_head(s)
            counts["verified"] = chain.verify_chain(s)[0]
    finally:
        engine.dispose()
    return counts


def test_dry_run_on_a_fresh_world_creates_no_ledger_and_leaves_the_repository_alone(small_world: Path) -> None:
    from night.report import summary_text

    settings = load_settings(small_world / "guidang.yaml")
    before = _tree(small_world)
    with unified_running(small_world):
        settings = load_settings(small_world / "guidang.yaml")
        summary = run_nightly(settings, dry_run=True)
    assert summary["status"] == "completed" and summary["totals"]["archived"] > 0
    assert not list(small_world.glob("ledger.sqlite*")), "a dry run created the ledger"
    assert _tree(small_world) == before  # repository, staging, sources: nothing written anywhere
    text_out = summary_text(summary)
    assert f"would archive {summary['totals']['archived']} package(s)" in text_out
    assert "stored" not in text_out


def test_dry_run_on_an_existing_ledger_changes_no_row_and_no_event(small_world: Path) -> None:
    url = f"sqlite:///{small_world / 'ledger.sqlite'}"
    with unified_running(small_world):
        settings = load_settings(small_world / "guidang.yaml")
        run_nightly(settings)
        before, tree_before = _ledger_state(url), _tree(small_world / "archive")
        summary = run_nightly(settings, dry_run=True)
    assert summary["status"] == "completed"
    assert _ledger_state(url) == before
    assert _tree(small_world / "archive") == tree_before


# -- rows whose update column is NULL


def test_rows_with_a_null_update_column_are_counted_and_reported_per_source(
    small_world: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from night.report import summary_text

    db = sqlite3.connect(small_world / "sources" / "sjjc.sqlite")
    with db:  # the department's system allows a NULL update time (the demo's schema does not)
        db.execute("PRAGMA writable_schema=ON")
        db.execute("UPDATE sqlite_master SET sql = replace(sql, 'modified_at DATETIME NOT NULL',"
                   " 'modified_at DATETIME') WHERE name = 'inspection_record'")
    db.close()
    db = sqlite3.connect(small_world / "sources" / "sjjc.sqlite")
    with db:
        closed = [r[0] for r in db.execute("SELECT record_no FROM inspection_record WHERE status = 'closed'"
                                           " ORDER BY record_no")]
        db.executemany("UPDATE inspection_record SET modified_at = NULL WHERE record_no = ?",
                       [(closed[0],), (closed[1],)])
        # a NULL update time on a row the query would not select anyway (not closed) is not reported
        db.execute("UPDATE inspection_record SET modified_at = NULL, status = 'open' WHERE record_no = ?",
                   (closed[-1],))
    db.close()
    with unified_running(small_world), caplog.at_level("WARNING"):
        summary = run_nightly(load_settings(small_world / "guidang.yaml"))
    assert summary["sources"]["sjjc"]["null_updated"] == 2
    assert summary["sources"]["tzxm"]["null_updated"] == 0
    assert "null_updated" not in summary["sources"]["unified"]  # not a sql source: nothing to count
    text_out = summary_text(summary)
    assert "sjjc: 2 row(s) with a NULL modified_at" in text_out
    assert any("NULL modified_at" in r.getMessage() and "sjjc" in r.getMessage() for r in caplog.records)


# -- summaries tell the truth


def test_second_night_counts_still_quarantined_matters_as_held_not_unchanged(small_world: Path) -> None:
    from datetime import UTC, datetime

    from ledger.models import QuarantineEntry
    from night.report import summary_text

    url = f"sqlite:///{small_world / 'ledger.sqlite'}"
    with unified_running(small_world):
        settings = load_settings(small_world / "guidang.yaml")
        first = run_nightly(settings)
        second = run_nightly(settings)  # the next night: nothing new collected, the quarantine still full
        again = run_nightly(settings, since=datetime(2000, 1, 1, tzinfo=UTC))  # everything collected again
    still_open = count_rows(url, QuarantineEntry, QuarantineEntry.resolved_at.is_(None))
    assert first["totals"]["quarantined"] == still_open > 0
    for night in (second, again):
        assert night["totals"]["in_quarantine"] == still_open
        for name, s in night["sources"].items():
            assert s["in_quarantine"] == count_rows(url, QuarantineEntry, QuarantineEntry.resolved_at.is_(None),
                                                QuarantineEntry.source == name)
        assert "held in quarantine" in summary_text(night)
    # collected again as they are: held, not "unchanged"
    assert again["totals"]["held"] == still_open
    assert again["totals"]["unchanged"] == first["totals"]["archived"] + first["totals"]["not_in_scope"]
    assert again["totals"]["collected"] == sum(
        again["totals"][k]
        for k in ("archived", "quarantined", "not_in_scope", "waiting", "unchanged", "held", "pending"))


def test_a_failed_run_reports_what_it_stored(small_world: Path) -> None:
    from night.report import summary_text

    def store_then_fail(c: RunContext, src: SourceConfig, a: Any, b: Any) -> SourceSummary:
        done = process_source(c, src, since=a, until=b)
        if src.name == "tzxm":  # the source breaks after its packages were stored
            raise GuidangError("source tzxm: connection lost after the transfer")
        return done

    url = f"sqlite:///{small_world / 'ledger.sqlite'}"
    with unified_running(small_world):
        summary = run_nightly(load_settings(small_world / "guidang.yaml"), run_source=store_then_fail)
    assert summary["status"] == "failed"
    stored = count_rows(url, MatterRecord, MatterRecord.state == MatterState.VERIFIED,
                    MatterRecord.run_id == summary["run_id"])
    assert stored > 0
    assert summary["stored"]["packages"] == stored
    assert f"stored {stored} package(s)" in summary_text(summary)


def test_printed_chain_head_and_event_count_are_those_audit_verify_reports(small_world: Path) -> None:
    from ledger import chain

    with unified_running(small_world):
        summary = run_nightly(load_settings(small_world / "guidang.yaml"))
    engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
    with Session(engine) as s:
        count, findings = chain.verify_chain(s)
        head = chain.chain_head(s)
        stored_summary = s.get(Run, summary["run_id"]).summary
    engine.dispose()
    assert not findings
    assert summary["ledger"] == {"events": count, "chain_head": head[1]}
    assert head[0] == count
    assert stored_summary["ledger"] == summary["ledger"]  # the run row keeps what was printed


def test_a_batch_left_half_stored_by_a_failed_run_is_completed_by_the_next_night(
    small_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails after the first file of the DA/T 93 batch; the next night (another day, so a
    new batch id would differ) finishes that batch under its own id and leaves no partial folder."""
    from datetime import UTC, datetime, timedelta

    from connectors.repositories.base import RepositoryError
    from connectors.repositories.fs import FilesystemRepository
    from packager.transfer import CATALOGUE_FILE, README_FILE, REGISTER_HTML_FILE, REGISTER_XML_FILE

    real_put = FilesystemRepository.put_file
    calls = {"transfers": 0}

    def flaky_put(self: FilesystemRepository, key: str, *args: Any, **kw: Any) -> Any:
        if key.startswith("transfers/"):
            calls["transfers"] += 1
            if calls["transfers"] == 2:
                raise RepositoryError("disk went away while storing the batch")
        return real_put(self, key, *args, **kw)

    settings = load_settings(small_world / "guidang.yaml")
    first = datetime.now(UTC).replace(microsecond=0)
    with unified_running(small_world):
        monkeypatch.setattr(FilesystemRepository, "put_file", flaky_put)
        night1 = run_nightly(settings, now=first)
        monkeypatch.setattr(FilesystemRepository, "put_file", real_put)
        assert night1["status"] == "failed" and not night1.get("transfer_batches")
        night2 = run_nightly(load_settings(small_world / "guidang.yaml"), now=first + timedelta(days=1))
    assert night2["status"] == "completed"
    transfers = small_world / "archive" / "transfers"
    folders = {p.name: {f.name for f in p.iterdir()} for p in transfers.iterdir()}
    expected = {CATALOGUE_FILE, README_FILE, REGISTER_XML_FILE, REGISTER_HTML_FILE}
    assert folders and all(names == expected for names in folders.values()), folders
    assert set(night2["transfer_batches"]) == set(folders)
    url = f"sqlite:///{small_world / 'ledger.sqlite'}"
    unbatched = (MatterRecord.state == MatterState.VERIFIED, MatterRecord.batch_id.is_(None))
    assert count_rows(url, MatterRecord, *unbatched) == 0
