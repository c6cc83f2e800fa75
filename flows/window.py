"""A collected window held packed: what a night keeps of each matter between collecting it and
staging its slice.

A `Matter` is a tree of pydantic objects, about 8 KB for a matter with one document (tracemalloc,
bench world), and a night held every matter of its window that way from collection to the end
of the source: a 4,000-matter night's run process grew by 15 KB of resident memory per matter, a
20,000-matter night would have passed 500 MB. Packed, a matter is its pickle compressed with zlib
at level 1 (about 1.1 KB against 1.7 KB uncompressed: 14 MB less at 20,000 matters, for some 100 µs
a matter to pack and unpack), beside the few fields triage and ordering read. It is turned back
into a `Matter` where one is worked on (triage, one matter at a time; staging, one chunk at a
time). The matter that comes back is equal to the one collected, and so is its content hash (a
test holds that over the demo world's matters).

Why a pickle and not pydantic's JSON: a matter parsed back from JSON carries its
times with pydantic-core's own tzinfo, and thousands of those alive when the interpreter exits
crash it in pydantic-core's teardown (pydantic/pydantic#12867; seen here: the test suite passed,
then the process died of SIGSEGV). A pickle keeps the very `datetime.timezone` objects the
connector made. The bytes never leave the process (or its worker processes, which receive
pickles anyway), so nothing untrusted is ever unpickled.
"""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass
from datetime import datetime

from schemas.model import InvalidMatter, Matter


@dataclass(frozen=True, slots=True)
class Packed:
    source: str
    project_id: str
    updated_at: datetime
    completed_at: datetime
    data: bytes  # the Matter, pickled and compressed

    @classmethod
    def of(cls, m: Matter) -> Packed:
        data = zlib.compress(pickle.dumps(m, pickle.HIGHEST_PROTOCOL), 1)
        return cls(m.source, m.project_id, m.updated_at, m.completed_at, data)

    def load(self) -> Matter:
        return pickle.loads(zlib.decompress(self.data))  # this process's own bytes (see above)

    @property
    def key(self) -> str:
        """`source/project_id`, as `Matter.key`."""
        return f"{self.source}/{self.project_id}"


Collected = Packed | InvalidMatter  # a record of a collected window (invalid ones stay as they are: few)


def pack(item: Matter | InvalidMatter) -> Collected:
    return Packed.of(item) if isinstance(item, Matter) else item
