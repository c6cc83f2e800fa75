"""A collected window held as JSON: what a night keeps of each matter between collecting it and
staging its slice.

A `Matter` is a tree of pydantic objects, about 8 KB for a matter with one document (tracemalloc,
bench world), and a night held every matter of its window that way from collection to the end
of the source: a 4,000-matter night's run process grew by 15 KB of resident memory per matter, a
20,000-matter night would have passed 500 MB. Packed, a matter is its JSON (about 1.4 KB) and the
few fields triage and ordering read; it is turned back into a `Matter` where one is worked on
(triage, one matter at a time; staging, one chunk at a time). The JSON is pydantic's own, so the
matter that comes back is equal to the one collected, and so is its content hash (a test holds
that over the demo world's matters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.model import InvalidMatter, Matter


@dataclass(frozen=True, slots=True)
class Packed:
    source: str
    project_id: str
    updated_at: datetime
    completed_at: datetime
    data: bytes  # Matter.model_dump_json()

    @classmethod
    def of(cls, m: Matter) -> Packed:
        return cls(m.source, m.project_id, m.updated_at, m.completed_at, m.model_dump_json().encode("utf-8"))

    def load(self) -> Matter:
        return Matter.model_validate_json(self.data)

    @property
    def key(self) -> str:
        """`source/project_id`, as `Matter.key`."""
        return f"{self.source}/{self.project_id}"


Collected = Packed | InvalidMatter  # a record of a collected window (invalid ones stay as they are: few)


def pack(item: Matter | InvalidMatter) -> Collected:
    return Packed.of(item) if isinstance(item, Matter) else item
