"""The HTTP plumbing under the unified simulator: a threaded server on 127.0.0.1 and answers that
an injected fault can cut short (a JSON body, or a file streamed from an offset for `Range`).

Kept apart from `unified`, which says what the interface answers; this says how bytes reach the
socket, so a truncated body, a dropped connection and a resumed transfer are written once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Truncated(Exception):
    """Raised after a deliberately short body, so the connection is dropped."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would stall each answer 40 ms
    server: Server

    def do_GET(self) -> None:
        self.server.answer(self, "GET")

    def do_POST(self) -> None:
        self.server.answer(self, "POST")

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


class Server(ThreadingHTTPServer):
    """Listens on 127.0.0.1:`port` (0: a free one) and hands every request to `answer(handler, method)`."""

    daemon_threads = True

    def __init__(self, port: int, answer: Callable[[Handler, str], None]) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.answer = answer


def send_json(h: Handler, status: int, obj: object, truncate: bool = False) -> None:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    h.send_response(status)
    h.send_header("Content-Type", "application/json; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    if h.close_connection:
        h.send_header("Connection", "close")
    h.end_headers()
    if truncate:
        h.wfile.write(data[: len(data) // 2])
        h.wfile.flush()
        raise Truncated
    h.wfile.write(data)


def range_start(h: Handler, size: int) -> int:
    """Where a `Range: bytes=N-` request resumes a body of `size` bytes (0: from the start)."""
    m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
    return int(m.group(1)) if m and int(m.group(1)) < size else 0


def send_file(h: Handler, media: str, body: bytes | Path, size: int, start: int, truncate: bool) -> None:
    """Answer with `body` (bytes held in memory, or a file read in blocks) from offset `start`."""
    length = size - start
    h.send_response(206 if start else 200)
    h.send_header("Content-Type", media)
    h.send_header("Content-Length", str(length))
    h.send_header("Accept-Ranges", "bytes")
    if start:
        h.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
    h.end_headers()
    to_send = length // 2 if truncate else length
    if isinstance(body, bytes):
        h.wfile.write(body[start : start + to_send])
    else:
        with body.open("rb") as f:
            h.wfile.flush()
            # the kernel copies the file to the socket (sendfile, where there is one), as a
            # production file server does: the bench's simulator shares the night's cores and
            # should not charge it for reading every document into Python first
            h.connection.sendfile(f, start, to_send)
    if truncate:
        h.wfile.flush()
        raise Truncated


def parse_time(q: dict[str, list[str]], name: str, default_tz: tzinfo) -> datetime | None:
    """The ISO date-time in query parameter `name`, in `default_tz` when it carries no offset."""
    values = q.get(name)
    if not values or not values[0]:
        return None
    text = values[0].replace(" ", "+")  # an unencoded "+08:00" arrives as " 08:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name}: not an ISO date-time: {values[0]!r}") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=default_tz)


def page_args(q: dict[str, list[str]]) -> tuple[int, int]:
    """(page, size) of a paged listing; ValueError with the message the client gets as a 400."""
    page = int((q.get("page") or ["1"])[0])
    size = int((q.get("size") or ["50"])[0])
    if page < 1 or not 1 <= size <= 1000:
        raise ValueError("page must be >= 1 and size within 1..1000")
    return page, size
