"""Whether a copy of the archive (`replicas:`) may lack something, read from the ledger.

Catching a copy up means listing the primary and the copy whole: on an archive of millions of
objects that is minutes of requests every night, for nothing on the nights a copy kept up. So the
night catches a copy up only when the ledger says it may be behind: it was never caught up (a copy
just configured), a night left it out since (`replica-left-out`, recorded at that night's close), or
a night since did not reach its close (killed, or closed as dead by the next), so whether it left a
copy out is unknown.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger import store
from ledger.chain import append_event
from ledger.models import Event, Run

CAUGHT_UP = "replica-caught-up"
LEFT_OUT = "replica-left-out"
CLOSED_KEY = "replicas_behind"  # set in a run's summary once its close recorded the copies it left out


def copies_to_catch_up(session: Session, names: list[str], current_run: str) -> list[str]:
    """Those of `names` that may lack an object of the primary."""
    events = session.execute(
        select(Event.seq, Event.kind, Event.payload).where(Event.kind.in_([CAUGHT_UP, LEFT_OUT])).order_by(Event.seq)
    ).all()
    last_caught: dict[str, int] = {}
    left_out: dict[str, int] = {}
    for seq, kind, payload in events:
        name = (payload or {}).get("replica")
        (last_caught if kind == CAUGHT_UP else left_out)[name] = seq
    return [n for n in names
            if n not in last_caught or left_out.get(n, 0) > last_caught[n]
            or _a_run_without_its_close(session, last_caught[n], current_run)]


def _a_run_without_its_close(session: Session, after_seq: int, current_run: str) -> bool:
    """Whether a run other than this one was at work after event `after_seq` and did not record, at its
    close, which copies it left out (it was killed, is still running, or ended before this was kept)."""
    at = session.scalar(select(Event.at).where(Event.seq == after_seq))
    runs = session.execute(select(Run.summary).where(
        Run.id != current_run, or_(Run.finished_at.is_(None), Run.finished_at >= at))).scalars()
    return any(summary is None or CLOSED_KEY not in summary for summary in runs)


def note_left_out(session: Session, run_id: str, behind: dict[str, str], summary: dict[str, Any]) -> None:
    """At a night's close: a `replica-left-out` event for each copy it could not write (name: why), and
    the summary's `replicas_behind`, which tells later nights that this one got as far as saying."""
    summary[CLOSED_KEY] = sorted(behind)
    for name, why in sorted(behind.items()):
        append_event(session, LEFT_OUT, run_id=run_id, payload={"replica": name, "reason": why})
    store.set_run_summary(session, run_id, summary)
