"""How the `guidang` process ends once its command has returned: everything the interpreter's
shutdown does that anyone can see, then an immediate exit.

Why: a night's process holds a few hundred thousand objects (the ledger's mapper and compiled
statements, the window it collected, pydantic's models, the format matcher's tables). The
interpreter's own shutdown frees them one by one, about half a second on a 2-core machine after
the summary is printed and every file closed: a tenth of a 600-matter night at 100 KB, and most of
what a one-package `guidang check` waits for after its answer. Nothing of that
freeing reaches a file, the ledger or the terminal.

What still runs, in the interpreter's order: the non-daemon threads are joined, the exit functions
run (logging's final flush and close, `weakref.finalize` callbacks such as temporary folders'
removal, multiprocessing's joins of its children, Prefect's own), and stdout and stderr are
flushed. Only then does the process exit, with the command's exit code. An exception the command
did not handle is not caught here: it ends the process the usual way, traceback and all.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable


def run_and_exit(main: Callable[[], object]) -> None:
    """Run `main` (the click application, which ends by raising SystemExit) and exit as above."""
    try:
        main()
    except SystemExit as exc:
        finish(exc.code)
    finish(0)


def finish(code: object) -> None:
    """Exit with `code` as SystemExit would read it (None: 0; an int; anything else printed to
    stderr, exit 1), after the visible part of the interpreter's shutdown."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    _join_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a reader gone, a stream closed
            stream.flush()
    os._exit(status & 0xFF)


def _join_threads() -> None:
    """What the interpreter does first at shutdown: wait for every thread that is not a daemon."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread is not threading.main_thread():
            thread.join()
