"""A quarantined row that has no 办件编号 resolves once the department fixes or deletes it.

Such a row cannot be fetched by its key, so a retry used to call it "unchanged" for ever and the
summary counted it in quarantine night after night. The retry now looks for the same record among
the source's rows without an id at its update time: still there, it is held; fixed or gone, the
entry is resolved and the retry's summary says so.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ledger.models import QuarantineEntry
from night.engine import run_nightly
from night.quarantine_retry import retry_quarantined
from night.report import summary_text
from schemas.config import load_settings
from tests.world_support import unified_running


def _entries(world: Path) -> list[QuarantineEntry]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(QuarantineEntry).where(QuarantineEntry.project_id.like("(row %"))))
    finally:
        engine.dispose()


def test_a_row_without_id_is_held_while_there_and_resolved_once_fixed(small_world: Path) -> None:
    db_path = small_world / "sources" / "sjjc.sqlite"
    db = sqlite3.connect(db_path)
    with db:
        victim = db.execute("SELECT record_no FROM inspection_record WHERE status = 'closed' "
                            "ORDER BY record_no LIMIT 1").fetchone()[0]
        db.execute("UPDATE inspection_record SET record_no = '' WHERE record_no = ?", (victim,))
    db.close()
    settings = load_settings(small_world / "guidang.yaml")
    with unified_running(small_world):
        run_nightly(settings)
        [entry] = _entries(small_world)
        assert entry.resolved_at is None

        kept = retry_quarantined(settings, [entry.id])  # nothing changed at the source
        assert kept["sources"]["sjjc"]["held"] == 1 and kept["sources"]["sjjc"]["unchanged"] == 0
        assert _entries(small_world)[0].resolved_at is None

        db = sqlite3.connect(db_path)
        with db:  # the department gives the row its 办件编号 back (and its update time moves on)
            db.execute("UPDATE inspection_record SET record_no = ?, modified_at = datetime(modified_at, '+1 minute') "
                       "WHERE record_no = ''", (victim,))
        db.close()
        fixed = retry_quarantined(settings, [entry.id])
    [after] = _entries(small_world)
    assert after.resolved_at is not None and "fixed or gone at the source" in (after.resolution or "")
    assert fixed["sources"]["sjjc"]["unchanged"] == 0
    why = "fixed or gone at the source: no row without 办件编号 holds this record any more"
    assert fixed["sources"]["sjjc"]["resolved"] == [f"#{entry.id} {entry.project_id}: {why}"]
    assert f"sjjc: resolved #{entry.id}" in summary_text(fixed)


def test_the_next_night_resolves_a_row_without_id_that_was_deleted(small_world: Path) -> None:
    db_path = small_world / "sources" / "sjjc.sqlite"
    db = sqlite3.connect(db_path)
    with db:
        victim = db.execute("SELECT record_no FROM inspection_record WHERE status = 'closed' "
                            "ORDER BY record_no LIMIT 1").fetchone()[0]
        db.execute("UPDATE inspection_record SET record_no = '' WHERE record_no = ?", (victim,))
    db.close()
    settings = load_settings(small_world / "guidang.yaml")
    with unified_running(small_world):
        first = run_nightly(settings)
        [entry] = _entries(small_world)
        assert entry.resolved_at is None and "resolved" not in first["sources"]["sjjc"]
        db = sqlite3.connect(db_path)
        with db:
            db.execute("DELETE FROM inspection_record WHERE record_no = ''")
        db.close()
        second = run_nightly(settings)
    assert _entries(small_world)[0].resolved_at is not None
    assert second["sources"]["sjjc"]["resolved"][0].startswith(f"#{entry.id} {entry.project_id}: fixed or gone")
    assert second["sources"]["sjjc"]["in_quarantine"] == first["sources"]["sjjc"]["in_quarantine"] - 1
