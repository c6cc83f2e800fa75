"""The archive with its copies (`replicas:`): every object the night stores goes to each copy, is
verified there, and then goes to the primary; what a copy missed is caught up by the next night.

The crash order of one object is extended, not changed: replicas first (each a verified put, a
no-op when the same bytes are there), the primary last, and the ledger hears of the package only
after that; a night killed anywhere in between repeats the same puts. A copy that cannot be written
(unmounted, unreachable after its retries) does not stop the night: it is left out for the rest of
the night, named in the log and in `behind`, and `catch_up` at the start of the next night copies
what it lacks from the primary, each object verified against the primary's digest and locked as
the primary's is. Reads go to the primary only; `audit fixity --copy NAME` reads a copy. Holds,
extensions and destructions act on every copy (a destruction waits for the strictest lock of any).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.repositories.base import Repository, RepositoryError, StoredObject
from connectors.repositories.disposal import LockState
from guidang_io.crashpoints import crashpoint

log = logging.getLogger("guidang")


class ReplicatedRepository:
    """The primary repository, with `replicas` ({name: repository, or the error that kept it from
    opening}) written alongside it."""

    def __init__(self, primary: Repository, replicas: dict[str, Repository | RepositoryError]) -> None:
        self.primary = primary
        self.replicas: dict[str, Repository] = {}
        self.behind: dict[str, str] = {}  # name: why this night left it out
        for name, repo in replicas.items():
            if isinstance(repo, RepositoryError):
                self.leave_out(name, repo)
            else:
                self.replicas[name] = repo

    def __repr__(self) -> str:
        return f"ReplicatedRepository({self.primary!r}, replicas={sorted(self.replicas)})"

    def __getattr__(self, name: str) -> Any:  # reads, sweeps, restore: the primary's
        return getattr(self.primary, name)

    def leave_out(self, name: str, exc: RepositoryError) -> None:
        self.replicas.pop(name, None)
        self.behind[name] = str(exc)
        log.warning("replica %s left out for this night (the next night catches it up): %s", name, exc)

    def _each_replica(self, write: Any) -> None:
        for name, repo in list(self.replicas.items()):
            try:
                write(repo)
            except RepositoryError as exc:
                if any(f.code in ("REPO-CONFLICT", "REPO-SOURCE-CHANGED") for f in exc.findings):
                    raise  # not the copy's absence: a real disagreement, loud as on the primary
                self.leave_out(name, exc)
                continue
            crashpoint("replica-stored")

    def put_file(self, key: str, local_path: Path, sha256: str, *, retain_until: object | None = None,
                 legal_hold: bool = False, consume: bool = False) -> StoredObject:
        self._each_replica(lambda r: r.put_file(key, local_path, sha256, retain_until=retain_until,
                                                legal_hold=legal_hold, consume=False))
        return self.primary.put_file(key, local_path, sha256, retain_until=retain_until, legal_hold=legal_hold,
                                     consume=consume)

    def put_bytes(self, key: str, data: bytes, *, retain_until: object | None = None,
                  legal_hold: bool = False) -> StoredObject:
        self._each_replica(lambda r: r.put_bytes(key, data, retain_until=retain_until, legal_hold=legal_hold))
        return self.primary.put_bytes(key, data, retain_until=retain_until, legal_hold=legal_hold)

    def make_durable(self, local_paths: Iterable[Path]) -> None:
        self.primary.make_durable(local_paths)

    # -- after the transfer: a hold, an extension and a destruction reach every copy ----------------

    def _all(self) -> list[Repository]:
        return [*self.replicas.values(), self.primary]

    def lock_state(self, key: str) -> LockState:
        """The strictest lock of any copy: a destruction waits until no copy protects the object."""
        states = [r.lock_state(key) for r in self._all()]
        dates = [s.retain_until for s in states if s.retain_until is not None]
        return LockState(max(dates) if dates else None, any(s.legal_hold for s in states))

    def set_legal_hold(self, key: str, on: bool) -> bool:
        return any([r.set_legal_hold(key, on) for r in self._all()])

    def extend_retention(self, key: str, until: Any) -> bool:
        return any([r.extend_retention(key, until) for r in self._all()])

    def delete(self, key: str) -> bool:
        """Deleted from every copy (a copy that fails raises: a destruction is not done until it is)."""
        return any([r.delete(key) for r in self._all()])

    @contextmanager
    def batch(self) -> Iterator[None]:
        with ExitStack() as stack:
            for repo in [*self.replicas.values(), self.primary]:
                stack.enter_context(repo.batch())
            yield


def catch_up(primary: Repository, name: str, replica: Repository) -> list[str]:
    """Copy to `replica` every object of the primary it lacks, verified against the primary's
    digest, with the primary's lock; returns the keys copied."""
    have = {o.key for o in replica.list("")}
    copied: list[str] = []
    now = datetime.now(UTC)
    for obj in primary.list(""):
        if obj.key in have:
            continue
        head = primary.head(obj.key)
        if head is None or head.sha256 is None:
            continue
        lock = primary.lock_state(obj.key)
        until = lock.retain_until if lock.retain_until is not None and lock.retain_until > now else None
        replica.restore(obj.key, primary.open(obj.key), head.sha256, retain_until=until, legal_hold=lock.legal_hold)
        copied.append(obj.key)
    if copied:
        log.warning("replica %s caught up: %d object(s) copied from the primary", name, len(copied))
    return copied
