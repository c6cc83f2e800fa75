"""Alarms that end a blocked read at its deadline, for clients whose reads cannot be bounded from inside.

A read blocked in the kernel waits for its socket's timeout, and a peer that sends a byte just
inside it keeps the read going for as long as it likes. When the client gives no way to shorten
each read (botocore streaming an S3 body through urllib3, a database driver awaiting its answer), the
only way out is from another thread:
an alarm armed before the read shuts the socket down when it goes off, the read returns at once
with an error, and the caller, seeing the alarm `fired`, reports the deadline. One thread per
process serves every alarm, so a read pays for a heap entry, not for a thread.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Alarm:
    """One armed action: it runs once its time comes unless `disarm` came first (never both)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._lock = threading.Lock()
        self.disarmed = False
        self.fired = False

    def disarm(self) -> None:
        with self._lock:
            self.disarmed = True

    def fire(self) -> None:
        with self._lock:
            if self.disarmed:
                return
            self.fired = True
            self.disarmed = True
            try:
                self._action()
            except (OSError, ValueError, RuntimeError) as exc:  # the socket was closed or released meanwhile
                log.debug("alarm action found nothing to stop: %s", exc)


class Watchdog:
    """The thread that fires alarms at their time; started by the first alarm."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> Alarm:
        """An alarm that runs `action` in `seconds` unless disarmed before."""
        alarm = Alarm(action)
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), alarm))
            if self._thread is None or not self._thread.is_alive():  # a forked worker has no thread yet
                self._thread = threading.Thread(target=self._serve, name="guidang-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
        return alarm

    def _serve(self) -> None:
        while True:
            with self._wake:
                while True:
                    while self._due and self._due[0][2].disarmed:
                        heapq.heappop(self._due)
                    if not self._due:
                        self._wake.wait()
                        continue
                    wait = self._due[0][0] - time.monotonic()
                    if wait <= 0:
                        alarm = heapq.heappop(self._due)[2]
                        break
                    self._wake.wait(wait)
            alarm.fire()


@functools.cache
def watchdog() -> Watchdog:
    """The process's watchdog, made on first use (like its certificate store: one is enough). A
    forked child makes its own: the parent's thread is not in it, and its lock may have been held."""
    os.register_at_fork(after_in_child=watchdog.cache_clear)
    return Watchdog()
