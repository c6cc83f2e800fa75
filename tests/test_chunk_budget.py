"""The chunk-size rule of a Prefect night (night/engine.sized_for): chunks grow past chunk_size only
as far as keeping a window within `orchestration.max_chunks` chunks per stage needs."""

from __future__ import annotations

from night.engine import chunk, sized_for
from schemas.config import UnifiedSource


def source(chunk_size: int) -> UnifiedSource:
    return UnifiedSource(name="u", kind="unified", base_url="http://x", chunk_size=chunk_size)


def test_a_window_within_the_budget_keeps_its_chunk_size() -> None:
    s = source(50)
    assert sized_for(s, 5_000, 100) is s  # exactly 100 chunks of 50
    assert sized_for(s, 10, 100) is s
    assert sized_for(s, 1_000_000, None) is s  # no budget: chunk_size alone


def test_a_larger_window_gets_chunks_just_large_enough() -> None:
    s = source(50)
    grown = sized_for(s, 20_000, 100)
    assert grown.chunk_size == 200 and grown.name == "u" and s.chunk_size == 50
    assert sized_for(s, 5_001, 100).chunk_size == 51  # the least size that keeps 5,001 within 100 chunks
    for matters in (5_001, 7_777, 20_000, 123_457):
        size = sized_for(s, matters, 100).chunk_size
        assert len(chunk(range(matters), size)) <= 100 < len(chunk(range(matters), size - 1))


def test_chunks_on_dask_are_at_least_its_minimum_and_still_within_the_budget() -> None:
    """A Dask task has a cost of its own (Prefect's settings serialised and rebuilt for each task):
    a Prefect night on Dask takes chunks of at least DASK_MIN_CHUNK, a larger chunk_size as it is,
    and a long window still within max_chunks."""
    from flows.nightly import DASK_MIN_CHUNK, PrefectFanout
    from night.work_units import RunRef

    on_dask = PrefectFanout(RunRef("r", None, "/tmp"), threads=False, max_chunks=100)  # type: ignore[arg-type]
    on_threads = PrefectFanout(RunRef("r", None, "/tmp"), threads=True, max_chunks=100)  # type: ignore[arg-type]
    assert on_threads.min_chunk is None and on_dask.min_chunk == DASK_MIN_CHUNK == 100
    s = source(50)
    assert sized_for(s, 600, on_threads.max_chunks, on_threads.min_chunk) is s
    assert sized_for(s, 600, on_dask.max_chunks, on_dask.min_chunk).chunk_size == 100  # 6 tasks a stage, not 12
    assert sized_for(s, 30, on_dask.max_chunks, on_dask.min_chunk).chunk_size == 100  # one chunk
    assert sized_for(source(250), 600, 100, 100).chunk_size == 250  # a larger chunk_size is kept
    assert sized_for(s, 20_000, 100, 100).chunk_size == 200  # the budget still bounds a long window
