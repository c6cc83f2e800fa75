"""How far a night has got, told to whoever listens, as plain callbacks: no terminal, no Prefect here.

The fanouts (night/fanout.py, and the Prefect tasks in flows/nightly.py) report each chunk as it
finishes and the night reports what triage decided and when a source is done; `NightProgress`
turns those into one running count per source and hands a `SourceProgress` to the callback the
caller gave `run_nightly`. `guidang run` draws bars from it (flows/cli/progress_bars.py); without a
callback nothing is counted.

A matter is *settled* when the night has done all it will do with it tonight: skipped or
quarantined by triage, quarantined or left pending while staged, or transferred. So a source's
bar ends at `settled == total`, where the total is what was collected plus what a crashed night
had left numbered (finished with the first transfer).

A listener that fails must never fail the night: its error is logged and the night goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

log = logging.getLogger("guidang")


@dataclass(frozen=True, slots=True)
class SourceProgress:
    """One source's counts so far, in matters."""

    source: str
    collected: int = 0
    staged: int = 0  # matters whose staging finished (whatever its outcome)
    transferred: int = 0  # matters whose transfer (put, read back, recorded) finished
    settled: int = 0
    total: int = 0
    finished: bool = False


NightCallback = Callable[[SourceProgress], None]


class NightProgress:
    """The running counts of one night; every method is cheap and safe from worker threads.

    Built with no callback it counts nothing, so a night without a listener pays nothing."""

    def __init__(self, callback: NightCallback | None = None, *, dry_run: bool = False) -> None:
        self.callback = callback
        self.dry_run = dry_run
        self._lock = threading.Lock()
        self._sources: dict[str, SourceProgress] = {}
        self._went_on: dict[str, int] = {}  # staged and handed on to numbering: transfers beyond it were resumed

    def triaged(self, source: str, *, collected: int, to_work: int) -> None:
        """The window was collected and triage kept `to_work` matters; the rest are settled."""
        self._update(source, lambda p: replace(p, collected=collected, total=max(p.total, collected),
                                               settled=p.settled + collected - to_work))

    def staged(self, source: str, size: int, went_on: int) -> None:
        """A chunk of `size` matters was staged; `went_on` of them go on to numbering and transfer
        (all of a dry run's end here: it transfers nothing)."""
        ended = size if self.dry_run else size - went_on
        self._went_on[source] = self._went_on.get(source, 0) + went_on
        self._update(source, lambda p: replace(p, staged=p.staged + size, settled=p.settled + ended))

    def transferred(self, source: str, size: int) -> None:
        """A chunk of `size` matters was transferred; matters a crashed night left numbered ride in the
        first chunks, beyond what staging handed on, and widen the total."""

        def step(p: SourceProgress) -> SourceProgress:
            done = p.transferred + size
            resumed = max(0, done - self._went_on.get(source, 0))
            return replace(p, transferred=done, settled=p.settled + size, total=max(p.total, p.collected + resumed))

        self._update(source, step)

    def finished(self, source: str) -> None:
        """The source is done (or failed): whatever it did not settle, it will not tonight."""
        self._update(source, lambda p: replace(p, finished=True))

    def _update(self, source: str, step: Callable[[SourceProgress], SourceProgress]) -> None:
        if self.callback is None:
            return
        with self._lock:
            now = step(self._sources.get(source) or SourceProgress(source))
            self._sources[source] = now
            try:
                self.callback(now)
            except Exception as exc:  # a bar that cannot draw is no reason to stop archiving
                log.info("progress not shown: %s: %s", exc.__class__.__name__, exc)


# The listener of a night started in this process by something that cannot hand it over itself:
# `guidang run` calls the Prefect flow, whose parameters are plain values the server records.
_listener: NightCallback | None = None


@contextmanager
def listening(callback: NightCallback | None) -> Iterator[None]:
    """While the block runs, a night started in this process (flows/nightly.py) reports to `callback`."""
    global _listener
    previous, _listener = _listener, callback
    try:
        yield
    finally:
        _listener = previous


def listener() -> NightCallback | None:
    return _listener
