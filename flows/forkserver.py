"""The forkserver the night's worker processes are forked from, started as early as a run can.

Starting it imports everything a work unit needs (flows/worker_preload.py: about a second of one
core), and a night used to pay that after it had collected its window, while the run's own process
triaged on the other core and the first chunks waited for a worker. `guidang run` starts it before
it imports the night itself, so the two imports share the machine's two cores and the workers are
ready by the first chunk. It stays light on purpose: importing this module starts nothing heavy.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

PRELOAD = ["flows.worker_preload"]


def context() -> BaseContext:
    """The multiprocessing context of the night's worker pool, its server told what to preload."""
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(PRELOAD)
    return mp


def start() -> None:
    """Start the forkserver now (it preloads in its own process; this returns at once)."""
    context()
    forkserver.ensure_running()


def workers(wanted: int) -> int:
    """`orchestration.workers`, 0 meaning one per CPU core this process may use."""
    if wanted:
        return wanted
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
