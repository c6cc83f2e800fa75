"""The disposition rules in the ledger, on SQLite, PostgreSQL and MariaDB: a hold by unit and by query,
a held or 永久 record refused for destruction, the approver never an appraiser, an extension that
keeps `audit verify`'s row check clean, every step an event of an intact chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ledger import destruction_steps, store
from ledger.chain import verify_chain
from ledger.disposition_rules import (
    DispositionRefused,
    Selector,
    approve,
    check_destroyable,
    decide,
    items,
    open_review,
    place_hold,
    records_by_codes,
    release_hold,
    select_records,
)
from ledger.models import Event, MatterRecord, MatterState
from ledger.rows import RowAnchors, matter_event, verify_rows
from schemas.model import RetentionPeriod
from tests.dbservers import fresh_database


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[store.Ledger]:
    if request.param == "sqlite":
        with store.Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as led:
            yield led
        return
    with fresh_database(request.param) as url, store.Ledger(url) as led:
        yield led


def _archive(ledger: store.Ledger, n: int, agency: str, period: str, title: str) -> str:
    code = f"Z109-WS·2016·{period}·SJ-{n:04d}"
    at = datetime(2016, 5, 1, 9, tzinfo=UTC)
    with ledger.transaction() as s:
        rec = MatterRecord(
            source="unified", project_id=f"P{n}", version=1, content_hash="0" * 64, state=MatterState.VERIFIED,
            service_code="S1", service_name="食品经营许可", matter_type="许可", agency=agency, title=title,
            completed_at=at, source_updated_at=at, fonds="Z109", year=2016, retention_period=period,
            archival_code=code, package_key=f"Z109/2016/{period}/{code}",
            disposition_date=None if period == "Y" else f"{2016 + int(period[1:])}-12-31", record={}, appraisal={},
        )
        s.add(rec)
        s.flush()
        matter_event(s, "verified", rec, run_id=None)
    return code


def test_the_rules_hold_on_every_backend(ledger: store.Ledger) -> None:
    a = _archive(ledger, 1, "市场监管局", "D10", "食品经营许可（甲）")
    b = _archive(ledger, 2, "市场监管局", "D10", "食品经营许可（乙）")
    c = _archive(ledger, 3, "人社局", "D10", "社保登记")
    _archive(ledger, 4, "人社局", "Y", "永久 record")

    with ledger.transaction() as s:
        found = select_records(s, Selector(unit="市场监管局", query="（乙）"))
        assert [r.archival_code for r in found] == [b]
        hold = place_hold(s, found, Selector(unit="市场监管局", query="（乙）"), reason="诉讼", user="carol")
    with ledger.transaction() as s:
        rv = open_review(s, date(2030, 1, 1), user="alice")
        assert [i.archival_code for i in items(s, rv.id)] == [a, b, c]  # 永久 never falls due
        review_id = rv.id
    with ledger.transaction() as s, pytest.raises(DispositionRefused, match="D-HELD"):
        decide(s, review_id, b, "destroy", reason="到期", user="alice")
    with ledger.transaction() as s:
        release_hold(s, hold.id, reason="结案", user="carol")
    with ledger.transaction() as s, pytest.raises(DispositionRefused, match="D-UNDECIDED"):
        approve(s, review_id, user="dave")
    with ledger.transaction() as s, pytest.raises(DispositionRefused, match="D-NO-REASON"):
        decide(s, review_id, a, "destroy", reason=" ", user="alice")
    with ledger.transaction() as s:
        decide(s, review_id, a, "destroy", reason="到期", user="alice")
        decide(s, review_id, b, "destroy", reason="到期", user="alice")
        decide(s, review_id, c, "extend", reason="仍有利用价值", user="bob", new_period=RetentionPeriod.D30)
    for same in ("alice", "bob"):
        with ledger.transaction() as s, pytest.raises(DispositionRefused, match="D-SAME-USER"):
            approve(s, review_id, user=same)
    with ledger.transaction() as s:
        approve(s, review_id, user="dave", extend_to=lambda rec, p: f"{rec.year + p.years}-12-31")
    with ledger.transaction() as s:  # held after the approval: the destruction itself refuses it
        late = place_hold(s, select_records(s, Selector(archival_codes=(a,))), Selector(archival_codes=(a,)),
                            reason="新的诉讼", user="carol")
        item = next(i for i in items(s, review_id) if i.archival_code == a)
        with pytest.raises(DispositionRefused, match="D-HELD"):
            destruction_steps.begin(s, item.id, user="erin")
        release_hold(s, late.id, reason="结案", user="carol")
    with ledger.read() as s:
        extended = records_by_codes(s, [c])[0]
        assert (extended.retention_period, extended.disposition_date) == ("D30", "2046-12-31")
        permanent = records_by_codes(s, ["Z109-WS·2016·Y·SJ-0004"])[0]
        with pytest.raises(DispositionRefused, match="D-PERMANENT"):
            check_destroyable(s, permanent)
        anchors = RowAnchors()
        events, findings = verify_chain(s, on_event=anchors)
        assert events > 10 and not findings
        assert verify_rows(s, anchors) == (4, [])
        kinds = [e.kind for e in s.query(Event).order_by(Event.seq)]
    assert kinds.count("disposition-decided") == 3 and "retention-extended" in kinds
    assert kinds.index("hold-placed") < kinds.index("hold-released") < kinds.index("disposition-approved")
