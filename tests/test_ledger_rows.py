"""Matter rows under the chain, checkpoints against the chain, and two processes appending at once, on
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from ledger import anchors, chain, store
from ledger.models import Event, MatterRecord, MatterState
from ledger.rows import RowAnchors, row_digest, verify_rows
from tests.dbservers import fresh_database

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    with fresh_database(request.param) as u:
        yield u


def _row(project_id: str, period: str = "Y") -> MatterRecord:
    moment = datetime(2026, 3, 1, 9, 30, 12, 345678, tzinfo=UTC)
    return MatterRecord(
        source="unified", project_id=project_id, version=1, content_hash="a" * 64, state=MatterState.NUMBERED,
        service_code="330106-XK-0001", service_name="食品经营许可", matter_type="01", agency="西湖区市场监督管理局",
        title="食品经营许可（张三）", completed_at=moment, source_updated_at=moment, fonds="Z109", year=2026,
        retention_period=period, category_code="WS", org_code="SJ", item_number=1,
        archival_code=f"Z109-WS·2026·{period}·SJ-{project_id}", package_key=f"Z109/2026/{period}/{project_id}",
        retention_version="v1", retention_row=3, disposition_date=None if period == "Y" else "2036-12-31",
        numbered_at=moment, run_id="r1", record={"PROJID": project_id, "名称": "食品经营许可"},
        appraisal={"rule_row": 3},
    )


def _archive_two(led: store.Ledger) -> list[int]:
    ids = []
    with led.transaction() as s:
        for pid, period in (("P1", "Y"), ("P2", "D10")):
            rec = store.record_numbered(s, _row(pid, period), run_id="r1")
            ids.append(rec.id)
    with led.transaction() as s:
        for i in ids:
            now = datetime.now(UTC)
            rec = store.locked_matter(s, i)
            store.mark_state(s, rec, MatterState.TRANSFERRED, run_id="r1", transferred_at=now, file_count=3,
                             total_bytes=1234, page_count=7)
            store.mark_state(s, rec, MatterState.VERIFIED, run_id="r1", verified_at=now)
    with led.transaction() as s:
        store.mark_acknowledged(s, store.locked_matter(s, ids[0]), datetime.now(UTC))
        store.record_batch(s, "Z109-20260301-00000000", ids, run_id="r1", payload={"batch_id": "x"})
    return ids


def _check(led: store.Ledger) -> tuple[set[str], list[str]]:
    anchors_ = RowAnchors()
    with led.read() as s:
        _, chain_findings = chain.verify_chain(s, on_event=anchors_)
        _, row_findings = verify_rows(s, anchors_)
    findings = chain_findings + row_findings
    return {f.code for f in findings}, [f"{f.where}: {f.message}" for f in findings]


def test_row_digests_survive_the_round_trip_through_each_backend(url: str) -> None:
    """What was digested in Python before the write is what is read back (times, enums, JSON)."""
    with store.Ledger(url) as led:
        ids = _archive_two(led)
        assert _check(led) == (set(), [])
        with led.read() as s:
            last = s.scalars(select(Event).where(Event.kind == "in-batch").order_by(Event.seq)).all()
            rows = {r.id: r for r in s.scalars(select(MatterRecord))}
        assert {ev.payload["matter_id"]: ev.payload["row_digest"] for ev in last} == {
            i: row_digest(rows[i]) for i in ids
        }
        assert all(ev.payload["retention_version"] == "v1" and ev.payload["retention_rule"] == 3 for ev in last)


@pytest.mark.parametrize(
    ("sql", "fields"),
    [
        ("UPDATE matters SET content_hash = '{}' WHERE project_id = 'P1'".format("b" * 64), {"content_hash"}),
        ("UPDATE matters SET retention_period = 'D10', disposition_date = '2027-01-01' WHERE project_id = 'P1'",
         {"retention_period", "disposition_date"}),
        ("UPDATE matters SET disposition_date = '2027-01-01' WHERE project_id = 'P2'", {"disposition_date"}),
    ],
    ids=["content-hash", "period-and-date", "disposition-date"],
)
def test_a_matter_row_changed_through_sql_is_named_with_its_fields(url: str, sql: str, fields: set[str]) -> None:
    with store.Ledger(url) as led:
        _archive_two(led)
        with led.engine.begin() as c:
            c.execute(text(sql))
        codes, messages = _check(led)
    assert codes == {"A-ROW-ALTERED"}
    assert len(messages) == 1
    assert "matter row" in messages[0] and ("P1" in messages[0] or "P2" in messages[0])
    for name in fields:
        assert name in messages[0]


def test_an_inserted_and_a_deleted_row_are_reported(url: str) -> None:
    with store.Ledger(url) as led:
        _archive_two(led)
        with led.transaction() as s:
            s.add(_row("P9"))  # as an INSERT outside guidang would: no event
        with led.engine.begin() as c:
            c.execute(text("DELETE FROM matters WHERE project_id = 'P2'"))
        codes, messages = _check(led)
    assert codes == {"A-ROW-UNRECORDED", "A-ROW-MISSING"}
    assert any("P9" in m for m in messages) and any("P2" in m for m in messages)


def test_checkpoints_catch_a_truncated_and_a_recomputed_chain(url: str) -> None:
    from schemas.digest import json_digest

    with store.Ledger(url) as led:
        _archive_two(led)
        with led.transaction() as s:
            cp = anchors.record_checkpoint(s, "r1", "test")
        with led.read() as s:
            assert anchors.check_checkpoints(s, [cp]) == []
        # recompute the whole chain after an edit, with the project's own hash function
        with led.transaction() as s:
            events = s.scalars(select(Event).order_by(Event.seq)).all()
            events[2].project_id = "P-forged"
            prev = chain.GENESIS_HASH
            for ev in events:
                ev.prev_hash = prev
                ev.hash = json_digest(chain._event_body(ev), prefix=prev)
                prev = ev.hash
            s.flush()
            s.execute(text("UPDATE event_chain_head SET hash = :h"), {"h": prev})
        with led.read() as s:
            assert chain.verify_chain(s)[1] == []  # consistent in itself: only the anchor can tell
            contradicted = anchors.check_checkpoints(s, [cp])
        with led.engine.begin() as c:  # and delete the tail (the checkpoint event), moving the head back
            c.execute(text("DELETE FROM events WHERE seq >= :n"), {"n": cp.seq})
            c.execute(text("UPDATE event_chain_head SET seq = :n, hash = (SELECT hash FROM events WHERE seq = :n)"),
                      {"n": cp.seq - 1})
        with led.read() as s:
            assert chain.verify_chain(s)[1] == []
            truncated = anchors.check_checkpoints(s, [cp])
    assert [f.code for f in contradicted] == ["A-CHECKPOINT-CONTRADICTED"]
    assert [f.code for f in truncated] == ["A-CHECKPOINT-AHEAD"]
    assert cp.where in truncated[0].where


WRITER = """
import sys, time
from pathlib import Path
from ledger import chain, store
with store.Ledger(sys.argv[1]) as led:
    Path(sys.argv[4] + "." + sys.argv[2]).touch()  # ready; then wait for the go, so both really overlap
    while not Path(sys.argv[4]).exists():
        time.sleep(0.01)
    began = time.time()
    for i in range(int(sys.argv[3])):
        with led.transaction() as s:
            chain.append_event(s, "test", source=sys.argv[2], project_id=str(i), payload={"i": i})
    print(began, time.time())
"""


@pytest.mark.parametrize("url", ["sqlite", "postgresql"], indirect=True)
def test_two_processes_appending_at_once_never_fork_the_chain(url: str, tmp_path: Path) -> None:
    with store.Ledger(url) as led:  # the schema first, so the writers race on events, not on DDL
        pass
    n = 200
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(n), str(go)], cwd=REPO_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("writer-a", "writer-b")
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"go.{name}").exists() for name in ("writer-a", "writer-b")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a writer did not start"
        time.sleep(0.01)
    go.touch()
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        spans.append(tuple(float(x) for x in out.split()))
    with store.Ledger(url) as led, led.read() as s:
        count, findings = chain.verify_chain(s)
        by_writer = dict(s.execute(select(Event.source, func.count()).group_by(Event.source)).all())
    assert findings == []
    assert count == 2 * n and by_writer == {"writer-a": n, "writer-b": n}
    # they really wrote at the same time: each began before the other had finished
    (a_began, a_ended), (b_began, b_ended) = spans
    assert a_began < b_ended and b_began < a_ended, spans
