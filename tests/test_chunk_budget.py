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
