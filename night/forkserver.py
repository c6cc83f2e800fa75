"""The server the night's worker processes are forked from, started as soon as `guidang run` has read
its configuration.

Starting it imports everything a work unit needs (night/worker_preload.py), which takes a core
for a noticeable while. Started only once a window of more than one chunk was collected, its first
chunks would wait for the workers while the run's process had nothing left to do. Started with the
run, the server's imports run beside the run process's own, on another core.

A night that never needs its workers (a window of one chunk, a dry run, a source that failed) must
not pay for that: the server, still importing, would hold the command's output streams open until
it finished, and a caller reading them would wait for it. `stop_unused` ends it at once.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.config import Settings

PRELOAD = ["night.worker_preload"]
RUN_PID_ENV = "GUIDANG_FORKSERVER_RUN"  # the run's pid, which the server watches while it imports
log = logging.getLogger("guidang")
_state = {"early": False, "used": False}  # started by `start`; a pool was opened on it since
_preload = list(PRELOAD)  # PRELOAD and what `start` was asked to add


def context() -> BaseContext:
    """The multiprocessing context of the night's worker pool, its server told what to preload."""
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(_preload)
    return mp


def pool_context() -> BaseContext:
    """`context()` for a worker pool about to be opened: the server is then in use."""
    _state["used"] = True
    return context()


def start(also: Sequence[str] = ()) -> None:
    """Start the server now; it preloads in its own process and this returns at once. `also`: more
    modules to preload, for workers that are not the local pool's (the night's Dask cluster forks
    its workers from this server too: flows/dask_preload.py)."""
    _preload[:] = [*PRELOAD, *also]
    context()
    os.environ[RUN_PID_ENV] = str(os.getpid())  # the server inherits this environment
    forkserver.ensure_running()
    _state.update(early=True, used=False)


def stop_unused() -> None:
    """End the server `start` started when no pool was opened on it since (it may still be
    importing): killed, reaped and forgotten, so that a later pool in this process starts a new
    one. A server a pool used stays, as multiprocessing keeps it, for the next pool."""
    if not _state["early"] or _state["used"]:
        return
    _state["early"] = False
    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        server._stop()  # closes its pipe, reaps it (at once: it is dead), removes its socket
    except (AttributeError, OSError) as exc:  # another Python's internals: the kill is what matters
        log.debug("forkserver not reset after its kill: %s", exc)
    # The resource tracker `start` launched with the server inherited this command's output too;
    # left to notice this process's exit on its own it outlives the command by a few milliseconds
    # (often enough for a caller to see it). No pool was opened, so it tracks nothing: stop it and
    # reap it now (a later pool starts a new one).
    from multiprocessing import resource_tracker

    try:
        resource_tracker._resource_tracker._stop()
    except (AttributeError, OSError, ChildProcessError) as exc:
        log.debug("resource tracker not stopped: %s", exc)


def local_workers(settings: Settings, *, dry_run: bool) -> int:
    """The worker processes a night on this machine has: `workers_wanted` when that is more than
    one and the night writes (a dry run's scratch ledger and staging live with its process), else
    0. The one rule for the local fanout (night/fanout.fanout_for), Prefect's tasks on threads
    (flows/nightly._fanout) and starting this server early (flows/cli/run.py)."""
    wanted = workers_wanted(settings)
    return wanted if wanted > 1 and not dry_run else 0


def wait_for_exit(pid: int, until: threading.Event | None = None, poll: float = 1.0) -> bool:
    """Block until process `pid` has exited (True), or until `until` is set (False; without one,
    only the exit ends the wait). A pidfd (Linux) wakes at the exit itself; elsewhere the pid is
    polled every `poll` seconds, and a pid that answers with another user's permission error counts
    as alive. A worker watches its run this way (night/fanout.py), and so does this server while
    it imports (night/worker_preload.py)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (AttributeError, OSError):
        fd = None
    try:
        while until is None or not until.is_set():
            if fd is not None:
                if select.select([fd], [], [], None if until is None else poll)[0]:
                    return True
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
            if until is None:
                time.sleep(poll)
            else:
                until.wait(poll)
        return False
    finally:
        if fd is not None:
            os.close(fd)


def workers_wanted(settings: Settings) -> int:
    """`orchestration.workers`; 0 means one per CPU core this process may use, and one more.

    Why one more: a worker waits for the device part of its time (documents are written and read
    back directly, guidang_io/direct_io.py, and each chunk ends with a sync), about an eighth of it on
    the bench machine; a spare worker runs while one waits, and a second spare finds nothing left
    to overlap (docs/benchmark.md has the figures)."""
    wanted = settings.orchestration.workers
    if wanted:
        return wanted
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores) + 1
