"""Reading a document's bytes from a source without letting the source hang the night.

Two things can stop a night that only wanted to read a file: a path that is no regular file (a
FIFO blocks `open()` until a writer appears, a device never ends, a directory fails late), and a
read that never returns (a hung network mount, a database that stops answering mid-BLOB, an HTTP
server that stops sending). The first is refused before any byte is read, by `stat` and by an
`fstat` of the descriptor opened non-blocking (so a FIFO swapped in between cannot block either);
the second is bounded per read by `timed`, which waits for each chunk on a helper thread and gives
up after the source's `read_timeout_seconds`, failing that document alone.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from schemas.digest import iter_file
from schemas.errors import DocumentUnavailable
from schemas.layout import is_dangerous_path

T = TypeVar("T")
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: Path, where: str) -> BinaryIO:
    """`path` opened for reading if, and only if, it is a regular file; DocumentUnavailable naming
    what it is otherwise. Never blocks on opening."""
    try:
        before = os.stat(path)
    except FileNotFoundError as exc:
        raise DocumentUnavailable(f"{where}: file not found") from exc
    except OSError as exc:
        raise DocumentUnavailable(f"{where}: cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(before.st_mode):
        raise DocumentUnavailable(f"{where}: is {_kind(before.st_mode)}, not a regular file; refused")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise DocumentUnavailable(f"{where}: cannot be read: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise DocumentUnavailable(f"{where}: is {_kind(mode)}, not a regular file; refused")
    return os.fdopen(fd, "rb")


def open_under(root: Path, rel: str, where: str, seconds: float) -> BinaryIO:
    """`rel` under `root`, opened by `open_regular` if it stays inside `root` once every link is
    followed; DocumentUnavailable otherwise. Resolving and opening run under the same time limit as
    the reads: `stat` on a hung network mount never returns either."""

    def locate() -> BinaryIO:
        try:
            base = root.resolve()
            target = (base / rel).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a link loop, a name the OS refuses
            raise DocumentUnavailable(f"{where}: cannot be resolved under {root}: {exc}") from exc
        if is_dangerous_path(rel) or not target.is_relative_to(base):
            raise DocumentUnavailable(f"{where}: the path escapes the document root {base}; refused")
        return open_regular(target, f"{where} under {base}")

    return within(seconds, locate, where)


class _Helper:
    """A daemon thread that runs one call at a time for whoever took it from the pool: starting a
    thread for every read costs about as much CPU as fetching a 100 KB document, handing the call to
    a waiting one a third of that (docs/benchmark.md). A helper whose call outlived its limit is
    abandoned: never given back, told to end once that call returns (if it ever does)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="guidang-read", daemon=True).start()

    def _serve(self) -> None:
        while (fn := self._calls.get()) is not None:
            try:
                self._answers.put((fn(), None))
            except BaseException as exc:  # handed to the caller, raised there
                self._answers.put((None, exc))

    def call(self, fn: Callable[[], T], seconds: float) -> T:
        """`fn()`'s value or error; queue.Empty once `seconds` have passed without one (the helper
        is then abandoned)."""
        self._calls.put(fn)
        try:
            value, error = self._answers.get(timeout=seconds)
        except queue.Empty:
            self._calls.put(None)  # ends the thread when the stuck call returns
            raise
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]


_IDLE: list[_Helper] = []  # as many as documents were read at once; only ever grows to that
_IDLE_LOCK = threading.Lock()


def _forget_helpers() -> None:
    """In a forked child the helpers' threads do not exist: a call handed to one would wait for
    nothing until its limit, and fail a sound document."""
    global _IDLE_LOCK
    _IDLE.clear()
    _IDLE_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def _take() -> _Helper:
    with _IDLE_LOCK:
        if _IDLE:
            return _IDLE.pop()
    return _Helper()


def _give_back(helper: _Helper) -> None:
    with _IDLE_LOCK:
        _IDLE.append(helper)


def within(seconds: float, fn: Callable[[], T], where: str) -> T:
    """`fn()` run on a helper thread, its result or its error; DocumentUnavailable when it has not
    returned after `seconds` (it is abandoned, as `timed` abandons a read)."""
    helper = _take()
    try:
        value = helper.call(fn, seconds)
    except queue.Empty:
        raise DocumentUnavailable(f"{where}: not opened within {seconds:g} s (read_timeout_seconds); "
                                  f"abandoned") from None
    except BaseException:
        _give_back(helper)
        raise
    _give_back(helper)
    return value


_END = object()


def timed(chunks: Iterator[bytes], seconds: float, where: str) -> Iterator[bytes]:
    """`chunks`, each of which must arrive within `seconds`; DocumentUnavailable once one does not.

    The reading runs on a helper thread: a read stuck in the kernel cannot be interrupted, so it is
    abandoned (the thread ends with the process at the latest) and the night goes on. A reader that
    stops early has `chunks` closed on the helper, under the same limit."""

    def step() -> object:
        return next(chunks, _END)

    helper: _Helper | None = _take()
    ended = False  # `chunks` is exhausted or raised: nothing to close
    try:
        while True:
            try:
                item = helper.call(step, seconds)
            except queue.Empty:
                helper = None
                raise DocumentUnavailable(f"{where}: no data within {seconds:g} s (read_timeout_seconds); "
                                          f"the read was abandoned") from None
            except BaseException:
                ended = True
                raise
            if item is _END:
                ended = True
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(chunks, "close", None)
        if helper is not None and not ended and close is not None:
            try:
                helper.call(close, seconds)
            except queue.Empty:
                helper = None
            except Exception:  # the reader is done with this document either way
                pass
        if helper is not None:
            _give_back(helper)


def read_blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """The file's blocks, closing it when the reader is done (or stops early)."""
    with handle:
        yield from iter_file(handle, size)
