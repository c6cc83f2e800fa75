"""A night over a self-built system holding poison rows: each is quarantined or named, none stops it.

The demo's sjjc system is given what real departmental databases hold: an epoch number where the
update time belongs (an INTEGER among TEXT dates, which no window selects), a 办结时间 in the year
0202 (which no retention-table version covers), GBK bytes in a text column and a document that is
a FIFO. The night must complete for sjjc, archive the other rows, quarantine the bad ones with the
column named, and name the row it can never collect in its summary.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from night.engine import run_nightly
from night.report import summary_text
from schemas.config import load_settings
from tests.world_support import unified_running


def test_poison_rows_are_quarantined_or_named_and_the_source_completes(small_world: Path) -> None:
    db = sqlite3.connect(small_world / "sources" / "sjjc.sqlite")
    with db:
        closed = [r[0] for r in db.execute("SELECT record_no FROM inspection_record WHERE status = 'closed' "
                                           "ORDER BY record_no")]
        epoch, ancient, gbk, piped = *closed[:3], closed[-1]
        db.execute("UPDATE inspection_record SET modified_at = 1796263200 WHERE record_no = ?", (epoch,))
        db.execute("UPDATE inspection_record SET completed_at = '0202-12-02 00:00:00.000000' WHERE record_no = ?",
                   (ancient,))
        db.execute("UPDATE inspection_record SET target_name = CAST(x'd5c5c8fd' AS TEXT) WHERE record_no = ?",
                   (gbk,))
        rel = db.execute("SELECT rel_path FROM attachment WHERE record_no = ? ORDER BY att_id LIMIT 1",
                         (piped,)).fetchone()[0]
    db.close()
    fifo = small_world / "sources" / "sjjc_files" / rel
    fifo.unlink()
    os.mkfifo(fifo)
    with unified_running(small_world):
        summary = run_nightly(load_settings(small_world / "guidang.yaml"))
    sjjc = summary["sources"]["sjjc"]
    assert "error" not in sjjc and sjjc["archived"] > 0
    assert sjjc["unordered"] == [f"{epoch} (modified_at = 1796263200)"]
    assert sjjc["quarantine_reasons"].get("Q-SOURCE-VALUE") == 2  # the year-0202 row and the GBK row
    assert sjjc["quarantine_reasons"].get("Q-DOC-FETCH-FAILED") == 1  # the FIFO, refused, never waited on
    text = summary_text(summary)
    assert f"sjjc: 1 row(s) are never collected, their modified_at cannot be ordered among dates: {epoch}" in text


def test_reconciliation_names_rows_it_cannot_list_instead_of_calling_the_source_unavailable(
    small_world: Path,
) -> None:
    from datetime import date

    from custody.reconcile import reconcile
    from ledger.store import Ledger

    db = sqlite3.connect(small_world / "sources" / "sjjc.sqlite")
    with db:
        closed = [r[0] for r in db.execute("SELECT record_no FROM inspection_record WHERE status = 'closed' "
                                           "ORDER BY record_no")]
        blank, epoch = closed[:2]
        db.execute("UPDATE inspection_record SET record_no = '' WHERE record_no = ?", (blank,))
        db.execute("UPDATE inspection_record SET modified_at = 1796263200 WHERE record_no = ?", (epoch,))
    db.close()
    settings = load_settings(small_world / "guidang.yaml")
    with unified_running(small_world):
        run_nightly(settings)
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        out = reconcile(settings, ledger, date(2026, 10, 1), date(2026, 12, 31), sources=["sjjc"]).to_dict()
    assert out["sources"] == {"sjjc": "listed"}
    codes = {f["code"]: f for f in out["findings"]}
    assert "R-SOURCE-UNAVAILABLE" not in codes
    assert codes["R-LIST-UNREADABLE"]["message"].endswith("field project_id (column record_no): missing")
    assert epoch in codes["R-UNACCOUNTED"]["project_ids"]  # never collected: named, not lost


def test_a_unified_matter_completed_in_the_year_0202_is_quarantined_and_its_source_completes(
    small_world: Path,
) -> None:
    import json

    path = small_world / "sources" / "unified" / "matters.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    victim = next(r for r in records if r.get("FINISHTIME") and r.get("SERVICETYPE") == "01")
    for key, value in list(victim.items()):
        if key.endswith("TIME") and key != "UPDATETIME" and isinstance(value, str):
            victim[key] = "0202-12-02T10:00:00+08:00"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    with unified_running(small_world):
        summary = run_nightly(load_settings(small_world / "guidang.yaml"))
    unified = summary["sources"]["unified"]
    assert "error" not in unified and summary["status"] == "completed"
    assert unified["archived"] > 0 and unified["quarantine_reasons"].get("Q-RETENTION-NO-RULE", 0) >= 1
