"""The 隔离 page as operations use it: grouped and filtered by reason and by 实施机构, each reason with its
next step in words, and a 重试 button that does what `guidang quarantine retry` does (CSRF-checked,
recorded in the chain)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from ledger.models import Event, QuarantineEntry, Run
from schemas.findings import code_text
from schemas.personal import agency_of
from tests.web_support import Console, csrf_of


def _open(world: Path) -> list[QuarantineEntry]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        rows = list(s.scalars(select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None))))
        s.expunge_all()
    engine.dispose()
    return rows


def _count(world: Path, model: type, *where) -> int:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        n = s.scalar(select(func.count()).select_from(model).where(*where)) or 0
    engine.dispose()
    return int(n)


def _ids(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'<tr><td>(\d+)</td>', page)}


def test_grouped_and_filtered_by_reason_and_unit_with_the_next_step(console: Console) -> None:
    entries = _open(console.world)
    code = max({c for e in entries for c in e.codes}, key=lambda c: sum(c in e.codes for e in entries))
    unit = agency_of(entries[0].record)
    assert unit
    with console.signed_in("opal") as c:
        page = c.get("/quarantine").text
        assert "按原因" in page and "按实施机构" in page
        assert f"{code_text(code)}</a> <code>{code}</code>" in page
        assert "下一步：" + code_text(code, "next") in page
        assert _ids(page) == {e.id for e in entries}
        by_reason = c.get("/quarantine", params={"reason": code}).text
        assert _ids(by_reason) == {e.id for e in entries if code in e.codes}
        by_unit = c.get("/quarantine", params={"unit": unit}).text
        assert _ids(by_unit) == {e.id for e in entries if agency_of(e.record) == unit}


def test_retry_is_for_operations_with_the_sessions_token_and_is_recorded(console: Console) -> None:
    entry = _open(console.world)[0]
    runs = _count(console.world, Run)
    with console.signed_in("archie") as archivist:
        assert 'action="/quarantine/' not in archivist.get("/quarantine").text
        token = csrf_of(archivist.get("/").text)
        assert archivist.post(f"/quarantine/{entry.id}/retry", data={"csrf": token}).status_code == 403
    with console.signed_in("opal") as ops:
        page = ops.get("/quarantine").text
        assert f'action="/quarantine/{entry.id}/retry"' in page
        assert ops.post(f"/quarantine/{entry.id}/retry", data={"csrf": "forged"}).status_code == 403
        assert _count(console.world, Run) == runs  # nothing ran
        r = ops.post(f"/quarantine/{entry.id}/retry", data={"csrf": csrf_of(page)})
        assert r.status_code == 303, r.text
        done = ops.get(r.headers["location"]).text
        assert f"已重试隔离编号 {entry.id}" in done
        assert ops.post("/quarantine/99999/retry", data={"csrf": csrf_of(page)}).status_code == 404
    assert _count(console.world, Run) == runs + 1  # one run, as `guidang quarantine retry` makes
    assert _count(console.world, Event, Event.kind == "quarantine-retry-requested",
                  Event.project_id == entry.project_id) == 1
    after = next((e for e in _open(console.world) if e.id == entry.id), None)
    assert after is None or after.attempts > entry.attempts
    # the retry's run is shown under the same night as the night's own run, not as a night of its own
    with console.signed_in("opal") as ops:
        home = ops.get("/").text
    assert home.count('<section class="night">') == 1 and "共 1 夜" in home
    assert home.count("<tr><td><code>") == 2 and "夜间归档" in home and "隔离重试" in home
