"""Fault injection for the unified-system simulator: which requests misbehave, and how.

A `FaultPlan` decides from per-endpoint request counters (and a seed), never from the clock, so a
test that passes once passes every time: 5xx answers, answers delayed past the client's timeout,
bodies cut short of their Content-Length, and wrong SHA256 values for chosen matters.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Literal

__all__ = ["ENDPOINTS", "Fault", "FaultKind", "FaultPlan"]

# The names FaultPlan and the request counters use for the endpoints.
ENDPOINTS = ("matters", "matter", "files", "catalogue", "ack", "acks", "statistics", "completed")
FaultKind = Literal["status", "delay", "truncate"]


@dataclass(frozen=True, slots=True)
class Fault:
    """One kind of misbehaviour and which requests it hits.

    A request is hit when it is among the `first` requests to its endpoint, or its number is a
    multiple of `every`, or the plan's seeded draw for (endpoint, number) falls under `share`.
    Numbers count per endpoint from 1, retries included, so a retried request is a new number.
    `limit` caps how many times this fault fires in all.
    """

    kind: FaultKind
    endpoints: tuple[str, ...] = ENDPOINTS
    share: float = 0.0
    every: int = 0
    first: int = 0
    limit: int | None = None
    status: int = 503  # kind="status"
    delay_seconds: float = 1.0  # kind="delay": how long the server waits before answering

    def __post_init__(self) -> None:
        unknown = set(self.endpoints) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoint(s) {sorted(unknown)}; known: {', '.join(ENDPOINTS)}")
        if not 0 <= self.share <= 1:
            raise ValueError("share must lie in [0, 1]")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The faults a simulator injects; the first fault (in order) that hits a request applies.

    `wrong_digest` lists PROJIDs whose MATERIALS are served with a SHA256 that does not match
    the bytes (the files themselves are served intact).
    """

    faults: tuple[Fault, ...] = ()
    wrong_digest: frozenset[str] = frozenset()
    seed: int = 0

    @classmethod
    def flaky(
        cls,
        *,
        share: float = 0.2,
        delay_seconds: float = 1.0,
        seed: int = 7,
        endpoints: tuple[str, ...] = ENDPOINTS,
    ) -> FaultPlan:
        """A bit of everything: `share` of requests each answered 500/503, delayed, or truncated."""
        return cls(
            faults=(
                Fault("status", endpoints, share=share, status=503),
                Fault("status", endpoints, share=share / 2, status=500),
                Fault("delay", endpoints, share=share / 2, delay_seconds=delay_seconds),
                Fault("truncate", endpoints, share=share),
            ),
            seed=seed,
        )

    @classmethod
    def down(cls, status: int = 503) -> FaultPlan:
        """Every request answered with `status`: the source is down."""
        return cls(faults=(Fault("status", every=1, status=status),))

    def pick(self, endpoint: str, number: int, fired: Counter[int]) -> Fault | None:
        for i, f in enumerate(self.faults):
            if endpoint not in f.endpoints or (f.limit is not None and fired[i] >= f.limit):
                continue
            hit = (f.first and number <= f.first) or (f.every and number % f.every == 0)
            if not hit and f.share:
                hit = random.Random(f"{self.seed}:{i}:{endpoint}:{number}").random() < f.share
            if hit:
                fired[i] += 1
                return f
        return None
