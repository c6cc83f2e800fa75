"""Named points where a test may kill this process, to prove that a night killed anywhere resumes.

Set GUIDANG_CRASH_AT=<point>:<n> and the process sends itself SIGKILL the n-th time it reaches
<point> (n defaults to 1). Unset, a crash point costs one dictionary lookup. The points are listed
in CRASH_POINTS so that the fault-injection suite can check it covers every one; a point not in
the list is a programming error, caught here rather than silently never firing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV = "GUIDANG_CRASH_AT"
# Set in a night's worker processes (night/fanout.py): the run's process, which a crash kills with them.
PARENT_ENV = "GUIDANG_CRASH_PARENT"

CRASH_POINTS: tuple[str, ...] = (
    "run-opened",  # the run row is committed, nothing else
    "retention-imported",  # the first run's table import is committed
    "collected",  # a source's window is collected, nothing decided
    "quarantined",  # one quarantine entry committed
    "not-in-scope",  # one not-in-scope row committed
    "staged",  # one matter's documents fetched into staging
    "prechecked",  # one matter passed the 四性检测 with its provisional 档号
    "numbered",  # one chunk's 件号 allocated and its matter rows committed (one transaction)
    "finalized",  # one package built with its real 档号, nothing stored
    "stored-file",  # one package file stored and verified
    "before-marker",  # every file of a package stored, completion marker not yet
    "after-marker",  # completion marker stored, ledger not yet told
    "verified",  # a chunk's stored packages recorded verified, sources not yet acknowledged
    "acknowledged",  # 归档回传 done and recorded for a chunk's matters
    "before-watermark",  # a source's matters all done, watermark not moved
    "watermark",  # a source's watermark committed
    "batch-stored",  # a DA/T 93 batch's files stored, ledger not yet told
    "batch-recorded",  # the batch is recorded on its matters
    "ledger-before-commit",  # inside any ledger write transaction, just before COMMIT
    "fs-temp-written",  # fs repository: temporary file written and fsynced, not yet linked
    "fs-linked",  # fs repository: final name linked, temporary name not yet removed
    "before-run-closed",  # everything done but the run row's status
)
# After the transfer: a destruction (custody/destruction.py) and a replica's writes, killed here by
# their own tests (tests/test_disposition.py, tests/test_disposition_s3.py, tests/test_replicas.py), not by the
# night's suite.
LATER_POINTS: tuple[str, ...] = (
    "destruction-begun",  # a record's destruction recorded as begun, nothing deleted
    "destroyed-object",  # one object of a record deleted, the record not yet recorded destroyed
    "replica-stored",  # one object stored and verified on a replica, not yet on the primary
)

_LOCK = threading.Lock()
_REACHED: Counter[str] = Counter()  # per-process tally; only ever read when ENV is set


def crashpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    if name not in CRASH_POINTS and name not in LATER_POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    target, _, nth = spec.partition(":")
    if target != name:
        return
    with _LOCK:
        _REACHED[name] += 1
        reached = _REACHED[name]
    if reached == int(nth or 1):
        parent = os.environ.get(PARENT_ENV)
        if parent:  # a worker process: the night dies as a whole, as one process would
            os.kill(int(parent), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
