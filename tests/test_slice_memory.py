"""A slice's staged matters are let go once they are numbered and stored.

The run's process hands every slice of a window to the stages and keeps what they report. A staged
matter (its `Matter`, its documents' facts, its precheck report) weighs hundreds of objects; a slice
outcome that held every one of them until the slice ended would keep a whole slice's (800 matters
by default) in the run's process after they are stored. These tests hold the matters by weak
reference only and ask, with the slice's outcome still in hand, whether any is still alive.
"""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from night.fanout import SliceOutcome, pipelined, run_slice
from night.staging import ChunkOutcome
from night.transferring import TransferOutcome


class FakeStaged:
    """Stands in for a staged matter: only its lifetime is looked at."""

    def __init__(self, n: int) -> None:
        self.n = n


def _chunks(count: int, size: int) -> list[list[int]]:
    return [list(range(i * size, (i + 1) * size)) for i in range(count)]


class Tracked:
    """Stage and transfer functions that make staged matters and watch them."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[FakeStaged]] = []
        self.transferred: list[int] = []

    def stage(self, chunk: list[int]) -> ChunkOutcome:
        staged = [FakeStaged(n) for n in chunk]
        self.refs += [weakref.ref(s) for s in staged]
        return ChunkOutcome(staged=staged)  # type: ignore[arg-type]

    def transfer(self, chunk: list[Any]) -> TransferOutcome:
        self.transferred += [s.n for s in chunk]
        return TransferOutcome()

    def alive(self) -> int:
        gc.collect()
        return sum(r() is not None for r in self.refs)


def test_a_pipelined_slice_keeps_no_staged_matter_once_its_chunks_are_stored() -> None:
    tracked = Tracked()
    with ThreadPoolExecutor(2) as pool:
        out = pipelined(lambda c: pool.submit(tracked.stage, c), lambda c: pool.submit(tracked.transfer, c),
                        3, 5, _chunks(8, 5), [], lambda staged: staged, lambda c, o: None, lambda c, o: None)
    assert sorted(tracked.transferred) == list(range(40))  # every matter was stored
    assert len(out.staged) == 8 and len(out.transferred) == 8  # every chunk reported
    assert tracked.alive() == 0


class StageByStage:
    """A fanout without a pipeline (as the Prefect flow's): the stages one after the other."""

    taper = False
    max_chunks = None

    def __init__(self, tracked: Tracked) -> None:
        self.tracked = tracked

    def stage(self, ctx: Any, source: Any, chunks: list[list[int]]) -> list[ChunkOutcome]:
        return [self.tracked.stage(c) for c in chunks]

    def transfer(self, ctx: Any, source: Any, chunks: list[list[Any]]) -> list[TransferOutcome]:
        return [self.tracked.transfer(c) for c in chunks]


class Source:
    chunk_size = 5


def test_a_slice_run_stage_by_stage_keeps_no_staged_matter_either() -> None:
    tracked = Tracked()
    out: SliceOutcome = run_slice(StageByStage(tracked), None, Source(), _chunks(4, 5), [],  # type: ignore[arg-type]
                                  lambda staged: staged)
    assert sorted(tracked.transferred) == list(range(20))
    assert len(out.staged) == 4
    assert tracked.alive() == 0
