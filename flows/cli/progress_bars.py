"""Progress bars for the long commands (`run`, `demo`, `audit fixity`, `retention import`, and the
lead's `audit reconcile`), drawn with rich on stderr, only when a person is watching.

A bar shows when stderr is a terminal, the command was not asked for --json, and the terminal is
not TERM=dumb; NO_COLOR keeps it but drops the colours (rich reads it). stdout is never touched:
tables and JSON are byte for byte what they are without a bar, and are written after it ends.

While a bar is live, rich puts a proxy in place of sys.stderr that prints each finished line above
the bar; guidang's log handler (flows/cli/common.py `TerminalHandler`) writes to whatever
sys.stderr is at the time, so the masked warnings of a night stay whole lines and the bar is
redrawn under them. The work below flows/cli reports through plain callbacks (night/progress.py,
retention.load.RowsRead, custody.fixity.ObjectsRead) and knows nothing of this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from schemas.model import mask_text

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from night.progress import NightCallback, SourceProgress


def show_progress(as_json: bool) -> bool:
    """Whether to draw bars: stderr is a terminal, not --json, and not a dumb terminal (CI logs, Emacs shells)."""
    if as_json or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stderr
        return False


class Bar:
    """One bar: `bar(k=1, *, total=None)` advances it by k (and sets the total when it becomes
    known); `bar.to(done, total)` sets it outright, for callbacks that count from the start.
    A disabled bar does nothing, so the command's code is the same either way."""

    def __init__(self, bars: Progress | None = None, task: TaskID | None = None) -> None:
        self._bars = bars
        self._task = task

    def __call__(self, k: int = 1, *, total: int | None = None) -> None:
        if self._bars is None or self._task is None:
            return
        if total is not None:
            self._bars.update(self._task, total=total)
        self._bars.advance(self._task, k)

    def to(self, done: int, total: int | None = None) -> None:
        if self._bars is None or self._task is None:
            return
        self._bars.update(self._task, completed=done, **({"total": total} if total is not None else {}))


@contextmanager
def _bars() -> Iterator[Progress]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=sys.stderr, highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    # stdout stays the command's own; stderr goes through the bar's console (log lines above the bar)
    with Progress(*columns, console=console, redirect_stdout=False, redirect_stderr=True) as bars:
        yield bars


@contextmanager
def progress_bar(label: str, total: int | None = None, *, enabled: bool = True, detail: str = "") -> Iterator[Bar]:
    """One bar labelled `label` (masked) for the block:
    `with progress_bar("对账", total=n, enabled=show_progress(as_json)) as advance: ... advance()`."""
    if not enabled:
        yield Bar()
        return
    with _bars() as bars:
        yield Bar(bars, bars.add_task(mask_text(label), total=total, detail=mask_text(detail)))


def _detail(p: SourceProgress) -> str:
    return f"暂存 staged {p.staged} · 移交 transferred {p.transferred} · 收集 collected {p.collected}"


@contextmanager
def night_bars(enabled: bool) -> Iterator[NightCallback | None]:
    """One bar per source of a night, matters settled out of those collected, with the counts
    staged and transferred beside it; yields the callback for `run_nightly` (None when disabled,
    so the night counts nothing)."""
    if not enabled:
        yield None
        return
    with _bars() as bars:
        tasks: dict[str, Any] = {}

        def show(p: SourceProgress) -> None:
            if p.source not in tasks:
                tasks[p.source] = bars.add_task(mask_text(p.source), total=p.total, detail="")
            bars.update(tasks[p.source], completed=p.settled, total=p.total, detail=_detail(p))

        yield show
