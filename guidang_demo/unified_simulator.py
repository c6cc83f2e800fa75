"""An HTTP simulator of the unified system's online-archiving interface (统建系统在线归档接口).

It serves a dataset written by `write_unified_dataset` on 127.0.0.1 from a background thread, so
the connector, the flows and the demo talk real HTTP to it. Faults are injected by a `FaultPlan`
(see `faults`): 5xx answers, answers delayed past the client's timeout, bodies cut short of their
Content-Length, and wrong SHA256 values for chosen matters.

Endpoints (JSON, UTF-8; optional `Authorization: Bearer <token>`):

    GET  /api/v1/matters?since=ISO&until=ISO&page=N&size=M   completed, UPDATETIME in (since, until]
    GET  /api/v1/matters/{PROJID}
    GET  /api/v1/files/{FILEID}                              streamed; honours `Range: bytes=N-`
    GET  /api/v1/catalogue
    GET  /api/v1/statistics/completed?from=ISO&to=ISO        办结 counts per DEPTNAME and SERVICETYPE,
                                                             FINISHTIME in [from, to)
    GET  /api/v1/completed?from=ISO&to=ISO&page=N&size=M     the same matters, PROJID … FINISHTIME, UPDATETIME
    POST /api/v1/matters/{PROJID}/archive-ack                {"archival_code": "..."} (归档回传)
    GET  /api/v1/acks

The two 办结 endpoints (`unified_completed`) answer for every completed record, including those the
connector refuses as invalid; `unified_changes` changes the data while the simulator runs.

Run `python -m guidang_demo DATA_DIR [--port N]` to look at a dataset by hand (a dataset is
written first when DATA_DIR holds none).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from guidang_demo.faults import ENDPOINTS, Fault, FaultPlan
from guidang_demo.serving import Handler, Server, Truncated, page_args, parse_time, range_start, send_file, send_json
from guidang_demo.unified_changes import DataChanges
from guidang_demo.unified_completed import CompletedEndpoints
from guidang_demo.unified_data import (
    CATALOGUE_FILE,
    FILES_DIR,
    MATTERS_FILE,
    SHANGHAI,
    catalogue_rows,
    write_unified_dataset,
)

__all__ = ["ENDPOINTS", "Fault", "FaultPlan", "UnifiedSimulator", "write_unified_dataset"]


_Row = tuple[datetime, str, dict[str, Any]]  # UPDATETIME, PROJID, the record

class UnifiedSimulator(DataChanges, CompletedEndpoints):
    """Serves one dataset; usable as a context manager (`with UnifiedSimulator(d) as url:`).

    `requests` counts requests per endpoint name (see ENDPOINTS), `faults_served` counts injected
    faults per kind, `range_requests` the file requests that resumed a transfer; they let tests
    prove that retries happened.
    """

    def __init__(self, data_dir: Path, *, faults: FaultPlan | None = None, token: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.faults = faults or FaultPlan()
        self.token = token
        self._lock = threading.Lock()
        self._matters: dict[str, dict[str, Any]] = {}
        self._files: dict[str, str] = {}  # FILEID -> PROJID
        self._extra_files: dict[str, bytes] = {}  # documents added while running
        # the last window served, sorted, while no matter changed: a client paging a window of N
        # matters asks N / size times, and scanning and sorting all of them for every page made
        # a large world's paging quadratic
        self._changed = 0
        self._window: tuple[Any, list[_Row]] = (None, [])
        self._acks: list[dict[str, Any]] = []
        self._fired: Counter[int] = Counter()
        self.requests: Counter[str] = Counter()
        self.faults_served: Counter[str] = Counter()
        self.range_requests = 0  # file requests that resumed with `Range: bytes=N-`
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._load()

    # -- life cycle ---------------------------------------------------------------------------

    def _load(self) -> None:
        path = self.data_dir / MATTERS_FILE
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{path}: no dataset here (write one with write_unified_dataset)") from exc
        for r in records:
            self._matters[r["PROJID"]] = r
            for mat in r.get("MATERIALS") or []:
                self._files[mat["FILEID"]] = r["PROJID"]
        cat = self.data_dir / CATALOGUE_FILE
        if cat.exists():
            self._catalogue = json.loads(cat.read_text(encoding="utf-8"))
        else:
            self._catalogue = catalogue_rows()

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (a free port unless `port` is given); return the base URL."""
        if self._server is not None:
            return self.base_url
        self._server = Server(port, self._handle)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="unified-simulator", daemon=True
        )
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests read; the changes they make are `DataChanges` -----------------------------------

    def matter(self, projid: str) -> dict[str, Any]:
        """A copy of the stored record, as the server holds it (before any fault)."""
        with self._lock:
            return copy.deepcopy(self._matters[projid])

    @property
    def acks(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._acks)

    def request_count(self, endpoint: str | None = None) -> int:
        with self._lock:
            return self.requests[endpoint] if endpoint else sum(self.requests.values())

    # -- HTTP -----------------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, str | None] | None:
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            return None
        rest = parts[2:]
        if method == "GET":
            if rest == ["matters"]:
                return "matters", None
            if len(rest) == 2 and rest[0] == "matters":
                return "matter", rest[1]
            if len(rest) == 2 and rest[0] == "files":
                return "files", rest[1]
            if rest == ["catalogue"]:
                return "catalogue", None
            if rest == ["statistics", "completed"]:
                return "statistics", None
            if rest == ["completed"]:
                return "completed", None
            if rest == ["acks"]:
                return "acks", None
        elif method == "POST" and len(rest) == 3 and rest[0] == "matters" and rest[2] == "archive-ack":
            return "ack", rest[1]
        return None

    def _handle(self, h: Handler, method: str) -> None:
        url = urlsplit(h.path)
        body = b""
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length) if length else b""
        route = self._route(method, url.path)
        if route is None:
            send_json(h, 404, {"error": f"no such endpoint: {method} {url.path}"})
            return
        endpoint, arg = route
        with self._lock:
            self.requests[endpoint] += 1
            fault = self.faults.pick(endpoint, self.requests[endpoint], self._fired)
            if fault is not None:
                self.faults_served[fault.kind] += 1
        try:
            if fault is not None and fault.kind == "status":
                h.close_connection = True
                send_json(h, fault.status, {"error": f"injected fault: HTTP {fault.status}"})
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.delay_seconds)
            truncate = fault is not None and fault.kind == "truncate"
            if self.token is not None and h.headers.get("Authorization") != f"Bearer {self.token}":
                send_json(h, 401, {"error": "missing or wrong bearer token"})
                return
            getattr(self, f"_do_{endpoint}")(h, arg, parse_qs(url.query), body, truncate)
        except Truncated:
            h.close_connection = True
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out)
            h.close_connection = True

    def _served(self, record: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(record)
        if out["PROJID"] in self.faults.wrong_digest:
            for mat in out.get("MATERIALS") or []:
                mat["SHA256"] = hashlib.sha256(f"wrong:{mat['FILEID']}".encode()).hexdigest()
        return out

    def _do_matters(self, h: Handler, _arg: str | None, q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        try:
            since = parse_time(q, "since", SHANGHAI)
            until = parse_time(q, "until", SHANGHAI)
            page, size = page_args(q)
        except ValueError as exc:
            send_json(h, 400, {"error": str(exc)})
            return
        with self._lock:
            rows = self._window_rows(since, until)
            items = [self._served(r) for _, _, r in rows[(page - 1) * size : page * size]]
        send_json(h, 200, {"total": len(rows), "page": page, "size": size, "items": items}, trunc)

    def _window_rows(self, since: datetime | None, until: datetime | None) -> list[_Row]:
        """Completed matters with UPDATETIME in (since, until], oldest first (under the lock)."""
        key = (since, until, self._changed, len(self._matters))
        if self._window[0] == key:
            return self._window[1]
        rows = []
        for r in self._matters.values():
            if not r.get("FINISHTIME"):
                continue
            try:
                ut = datetime.fromisoformat(r["UPDATETIME"])
            except (KeyError, TypeError, ValueError):
                continue
            if (since is None or ut > since) and (until is None or ut <= until):
                rows.append((ut, r["PROJID"], r))
        rows.sort(key=lambda t: (t[0], t[1]))
        self._window = (key, rows)
        return rows

    def _do_matter(self, h: Handler, projid: str, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        with self._lock:
            record = self._matters.get(projid)
            served = self._served(record) if record else None
        if served is None:
            send_json(h, 404, {"error": f"no matter {projid}"})
        else:
            send_json(h, 200, served, trunc)

    def _do_catalogue(self, h: Handler, _a: str | None, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        send_json(h, 200, {"total": len(self._catalogue), "items": self._catalogue}, trunc)

    def _do_acks(self, h: Handler, _a: str | None, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        send_json(h, 200, {"items": self.acks}, trunc)

    def _do_ack(self, h: Handler, projid: str, _q: dict[str, list[str]], body: bytes, trunc: bool) -> None:
        try:
            payload = json.loads(body.decode("utf-8"))
            code = payload["archival_code"]
            if not isinstance(code, str) or not code:
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            send_json(h, 400, {"error": 'expected JSON {"archival_code": "..."}'})
            return
        with self._lock:
            known = projid in self._matters
            if known:
                ack = {"PROJID": projid, "archival_code": code,
                       "received_at": datetime.now(SHANGHAI).isoformat(timespec="seconds")}
                self._acks.append(ack)
        if not known:
            send_json(h, 404, {"error": f"no matter {projid}"})
        else:
            send_json(h, 200, {"ok": True, "PROJID": projid, "archival_code": code}, trunc)

    def _do_files(self, h: Handler, fid: str, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        with self._lock:
            known = fid in self._files
            extra = self._extra_files.get(fid)
            media = "application/octet-stream"
            if known:
                for mat in self._matters[self._files[fid]].get("MATERIALS") or []:
                    if mat.get("FILEID") == fid:
                        media = mat.get("FILETYPE") or media
        path = self.data_dir / FILES_DIR / f"{fid}.pdf"
        if not known or (extra is None and not path.is_file()):
            send_json(h, 404, {"error": f"no file {fid}"})
            return
        size = len(extra) if extra is not None else path.stat().st_size
        start = range_start(h, size)
        if start:
            with self._lock:
                self.range_requests += 1
        send_file(h, media, extra if extra is not None else path, size, start, trunc)
