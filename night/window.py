"""A collected window held packed: what a night keeps of each matter between collecting it and
staging its slice.

A `Matter` is a tree of pydantic objects, several kilobytes even for a matter with one document;
held that way from collection to the end of the source, a large window's matters would make the run
process grow with every matter. Packed, a matter is its pickle compressed with zlib at level 1
(the fastest level, which still saves a good share of the bytes), beside the few fields
triage and ordering read. It is turned back
into a `Matter` where one is worked on (triage, one matter at a time; staging, one chunk at a
time). The matter that comes back is equal to the one collected, and so is its content hash (a
test holds that over the demo world's matters).

Why a pickle and not pydantic's JSON: a matter parsed back from JSON carries its
times with pydantic-core's own tzinfo, and thousands of those alive when the interpreter exits
crash it in pydantic-core's teardown (pydantic/pydantic#12867: a process that
passed all its work then dies of SIGSEGV). A pickle keeps the very `datetime.timezone` objects the
connector made. The bytes never leave the process (or its worker processes, which receive
pickles anyway), so nothing untrusted is ever unpickled.

Packed bytes held in memory would still grow a night by the bytes and the heap they fragment,
matter by matter. So the run's own process writes them to a spool file in
its staging folder as they arrive and keeps only the fields above and the bytes' place in the file:
a few hundred bytes a matter. A packed matter that leaves the process (to a worker process, a Dask
worker, a Prefect task on another machine) takes its bytes with it, read back from the spool when it
is pickled, so a chunk is self-contained wherever it runs. The spool is scratch like the rest of
staging: a killed run's is removed with its folder by the next run (night/context.py).
"""

from __future__ import annotations

import os
import pickle
import threading
import zlib
from collections.abc import Iterable
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

from schemas.errors import InvariantBroken
from schemas.model import InvalidMatter, Matter

WINDOW_SPOOL = "window.spool"  # in the run's staging folder


class Spool:
    """An append-only scratch file of packed matters, read back by offset (any thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self._end = 0
        self._lock = threading.Lock()

    def put(self, data: bytes) -> int:
        with self._lock:
            at = self._end
            view = memoryview(data)
            while view:  # a short write is possible on any file
                view = view[os.pwrite(self._fd, view, at + len(data) - len(view)):]
            self._end += len(data)
            return at

    def get(self, at: int, size: int) -> bytes:
        data = os.pread(self._fd, size, at)
        if len(data) != size:
            raise OSError(f"{self.path}: {size} bytes at {at} expected, {len(data)} read")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Packed:
    """A collected matter: the fields triage and ordering read, and the matter itself pickled and
    compressed, held in memory or in a `Spool`."""

    __slots__ = ("_at", "_data", "_size", "_spool", "completed_at", "project_id", "source", "updated_at")

    def __init__(self, source: str, project_id: str, updated_at: datetime, completed_at: datetime,
                 data: bytes, spool: Spool | None = None) -> None:
        self.source, self.project_id = source, project_id
        self.updated_at, self.completed_at = _shared_zone(updated_at), _shared_zone(completed_at)
        self._spool, self._size = spool, len(data)
        self._data: bytes | None = None if spool is not None else data
        self._at = spool.put(data) if spool is not None else 0

    @classmethod
    def of(cls, m: Matter, spool: Spool | None = None) -> Packed:
        data = zlib.compress(pickle.dumps(m, pickle.HIGHEST_PROTOCOL), 1)
        return cls(m.source, m.project_id, m.updated_at, m.completed_at, data, spool)

    @property
    def data(self) -> bytes:
        if self._data is not None:
            return self._data
        if self._spool is None:
            raise InvariantBroken("a packed matter with neither its bytes nor a spool")
        return self._spool.get(self._at, self._size)

    def into(self, spool: Spool | None) -> Packed:
        """This matter held in `spool` (itself when it is there already, or when there is none)."""
        if spool is None or self._spool is spool:
            return self
        return Packed(self.source, self.project_id, self.updated_at, self.completed_at, self.data, spool)

    def load(self) -> Matter:
        return pickle.loads(zlib.decompress(self.data))  # this process's own bytes (see above)

    def __reduce__(self) -> tuple[Any, ...]:
        return Packed, (self.source, self.project_id, self.updated_at, self.completed_at, self.data)

    @property
    def key(self) -> str:
        """`source/project_id`, as `Matter.key`."""
        return f"{self.source}/{self.project_id}"


_ZONES: dict[tuple[object, object], tzinfo] = {}


def _shared_zone(dt: datetime) -> datetime:
    """The same instant with a fixed-offset zone shared by every packed matter. A time parsed from
    text with an offset ("+08:00") carries a `timezone` object of its own, and its offset, about
    120 bytes for each of the two times a packed matter keeps: a large window's run process grew by
    them. A zone of the same offset and name is interchangeable (equal, the same text and name)."""
    zone = dt.tzinfo
    if type(zone) is not timezone:
        return dt  # naive, or a ZoneInfo (one object per zone already)
    shared = _ZONES.setdefault((zone.utcoffset(None), zone.tzname(None)), zone)
    return dt if shared is zone else dt.replace(tzinfo=shared)


Collected = Packed | InvalidMatter  # a record of a collected window (invalid ones stay as they are: few)


def pack(item: Matter | InvalidMatter, spool: Spool | None = None) -> Collected:
    return Packed.of(item, spool) if isinstance(item, Matter) else item


def spooled(items: Iterable[Collected], spool: Spool | None) -> list[Collected]:
    """A window collected elsewhere (a task on another worker returns its matters whole), into `spool`."""
    return [item.into(spool) if isinstance(item, Packed) else item for item in items]
