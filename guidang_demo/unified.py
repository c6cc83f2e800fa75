"""An HTTP simulator of the unified system's online-archiving interface (统建系统在线归档接口).

It serves a dataset written by `write_unified_dataset` on 127.0.0.1 from a background thread, so
the connector, the flows and the demo talk real HTTP to it. Faults are injected by a `FaultPlan`
that decides from per-endpoint request counters (and a seed), never from the clock, so a test that
passes once passes every time: 5xx answers, answers delayed past the client's timeout, bodies cut
short of their Content-Length, and wrong SHA256 values for chosen matters.

Endpoints (JSON, UTF-8; optional `Authorization: Bearer <token>`):

    GET  /api/v1/matters?since=ISO&until=ISO&page=N&size=M   completed, UPDATETIME in (since, until]
    GET  /api/v1/matters/{PROJID}
    GET  /api/v1/files/{FILEID}                              streamed; honours `Range: bytes=N-`
    GET  /api/v1/catalogue
    POST /api/v1/matters/{PROJID}/archive-ack                {"archival_code": "..."} (归档回传)
    GET  /api/v1/acks

Run `python -m guidang_demo.unified DATA_DIR [--port N]` to look at a dataset by hand
(a dataset is written first when DATA_DIR holds none).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from guidang_demo.catalogue import DEMO_CATALOGUE
from guidang_demo.unified_data import (
    CATALOGUE_FILE,
    FILES_DIR,
    MATTERS_FILE,
    SHANGHAI,
    write_unified_dataset,
)

__all__ = ["ENDPOINTS", "Fault", "FaultPlan", "UnifiedSimulator", "write_unified_dataset"]

# The names FaultPlan and the request counters use for the endpoints.
ENDPOINTS = ("matters", "matter", "files", "catalogue", "ack", "acks")
FaultKind = Literal["status", "delay", "truncate"]
_BLOCK = 64 * 1024
_GROUPS = {"申报": "申报", "申报材料": "申报", "过程": "过程", "过程材料": "过程", "结果": "结果", "结果材料": "结果"}


@dataclass(frozen=True, slots=True)
class Fault:
    """One kind of misbehaviour and which requests it hits.

    A request is hit when it is among the `first` requests to its endpoint, or its number is a
    multiple of `every`, or the plan's seeded draw for (endpoint, number) falls under `share`.
    Numbers count per endpoint from 1, retries included, so a retried request is a new number.
    `limit` caps how many times this fault fires in all.
    """

    kind: FaultKind
    endpoints: tuple[str, ...] = ENDPOINTS
    share: float = 0.0
    every: int = 0
    first: int = 0
    limit: int | None = None
    status: int = 503  # kind="status"
    delay_seconds: float = 1.0  # kind="delay": how long the server waits before answering

    def __post_init__(self) -> None:
        unknown = set(self.endpoints) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoint(s) {sorted(unknown)}; known: {', '.join(ENDPOINTS)}")
        if not 0 <= self.share <= 1:
            raise ValueError("share must lie in [0, 1]")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The faults a simulator injects; the first fault (in order) that hits a request applies.

    `wrong_digest` lists PROJIDs whose MATERIALS are served with a SHA256 that does not match
    the bytes (the files themselves are served intact).
    """

    faults: tuple[Fault, ...] = ()
    wrong_digest: frozenset[str] = frozenset()
    seed: int = 0

    @classmethod
    def flaky(
        cls,
        *,
        share: float = 0.2,
        delay_seconds: float = 1.0,
        seed: int = 7,
        endpoints: tuple[str, ...] = ENDPOINTS,
    ) -> FaultPlan:
        """A bit of everything: `share` of requests each answered 500/503, delayed, or truncated."""
        return cls(
            faults=(
                Fault("status", endpoints, share=share, status=503),
                Fault("status", endpoints, share=share / 2, status=500),
                Fault("delay", endpoints, share=share / 2, delay_seconds=delay_seconds),
                Fault("truncate", endpoints, share=share),
            ),
            seed=seed,
        )

    @classmethod
    def down(cls, status: int = 503) -> FaultPlan:
        """Every request answered with `status`: the source is down."""
        return cls(faults=(Fault("status", every=1, status=status),))

    def pick(self, endpoint: str, number: int, fired: Counter[int]) -> Fault | None:
        for i, f in enumerate(self.faults):
            if endpoint not in f.endpoints or (f.limit is not None and fired[i] >= f.limit):
                continue
            hit = (f.first and number <= f.first) or (f.every and number % f.every == 0)
            if not hit and f.share:
                hit = random.Random(f"{self.seed}:{i}:{endpoint}:{number}").random() < f.share
            if hit:
                fired[i] += 1
                return f
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: UnifiedSimulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would stall each answer 40 ms
    server: _Server

    def do_GET(self) -> None:
        self.server.sim._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.sim._handle(self, "POST")

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


class _Truncated(Exception):
    """Raised after a deliberately short body, so the connection is dropped."""


class UnifiedSimulator:
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
        self._acks: list[dict[str, Any]] = []
        self._fired: Counter[int] = Counter()
        self.requests: Counter[str] = Counter()
        self.faults_served: Counter[str] = Counter()
        self.range_requests = 0  # file requests that resumed with `Range: bytes=N-`
        self._server: _Server | None = None
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
            self._catalogue = [
                {"SERVICECODE": e.service_code, "SERVICENAME": e.service_name, "SERVICETYPE": e.matter_type,
                 "DEPTNAME": e.agency, "DEPTCODE": e.agency_code}
                for e in DEMO_CATALOGUE
            ]

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (a free port unless `port` is given); return the base URL."""
        if self._server is not None:
            return self.base_url
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.sim = self
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

    # -- changing data while running (补充材料) --------------------------------------------------

    def _bump(self, record: dict[str, Any], at: datetime | None) -> str:
        if at is None:
            latest = max(datetime.fromisoformat(m["UPDATETIME"]) for m in self._matters.values())
            at = max(datetime.now(SHANGHAI), latest + timedelta(seconds=1))
        elif at.tzinfo is None:
            at = at.replace(tzinfo=SHANGHAI)
        record["UPDATETIME"] = at.astimezone(SHANGHAI).replace(microsecond=0).isoformat()
        return record["UPDATETIME"]

    def update_matter(self, projid: str, *, at: datetime | None = None, **changes: Any) -> str:
        """Change fields of a matter (uppercase names, None deletes) and bump its UPDATETIME, to `at`
        or past every UPDATETIME in the data; return the new UPDATETIME."""
        with self._lock:
            record = self._matters[projid]
            for k, v in changes.items():
                if v is None:
                    record.pop(k, None)
                else:
                    record[k] = v
            return self._bump(record, at)

    def add_document(
        self,
        projid: str,
        group: str,
        file_name: str,
        data: bytes,
        *,
        title: str | None = None,
        media_type: str = "application/pdf",
        at: datetime | None = None,
    ) -> str:
        """Attach a document (补充材料) to a matter, bump its UPDATETIME; return the new FILEID."""
        if group not in _GROUPS:
            raise ValueError(f"unknown group {group!r} (申报/过程/结果)")
        with self._lock:
            record = self._matters[projid]
            materials = record.setdefault("MATERIALS", [])
            fid = f"{projid}-{len(materials) + 1:02d}"
            while fid in self._files:
                fid += "b"
            materials.append({
                "FILEID": fid,
                "GROUP": _GROUPS[group],
                "MATERIALNAME": title or file_name.rsplit(".", 1)[0],
                "FILENAME": file_name,
                "FILETYPE": media_type,
                "FILESIZE": len(data),
                "SHA256": hashlib.sha256(data).hexdigest(),
            })
            self._files[fid] = projid
            self._extra_files[fid] = bytes(data)
            self._bump(record, at)
            return fid

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
            if rest == ["acks"]:
                return "acks", None
        elif method == "POST" and len(rest) == 3 and rest[0] == "matters" and rest[2] == "archive-ack":
            return "ack", rest[1]
        return None

    def _handle(self, h: _Handler, method: str) -> None:
        url = urlsplit(h.path)
        body = b""
        if method == "POST":
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length) if length else b""
        route = self._route(method, url.path)
        if route is None:
            self._send_json(h, 404, {"error": f"no such endpoint: {method} {url.path}"})
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
                self._send_json(h, fault.status, {"error": f"injected fault: HTTP {fault.status}"})
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.delay_seconds)
            truncate = fault is not None and fault.kind == "truncate"
            if self.token is not None and h.headers.get("Authorization") != f"Bearer {self.token}":
                self._send_json(h, 401, {"error": "missing or wrong bearer token"})
                return
            getattr(self, f"_do_{endpoint}")(h, arg, parse_qs(url.query), body, truncate)
        except _Truncated:
            h.close_connection = True
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. timed out)
            h.close_connection = True

    def _send_json(self, h: _Handler, status: int, obj: object, truncate: bool = False) -> None:
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
            raise _Truncated
        h.wfile.write(data)

    def _served(self, record: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(record)
        if out["PROJID"] in self.faults.wrong_digest:
            for mat in out.get("MATERIALS") or []:
                mat["SHA256"] = hashlib.sha256(f"wrong:{mat['FILEID']}".encode()).hexdigest()
        return out

    def _do_matters(self, h: _Handler, _arg: str | None, q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        try:
            since = _parse_time(q, "since")
            until = _parse_time(q, "until")
            page = int((q.get("page") or ["1"])[0])
            size = int((q.get("size") or ["50"])[0])
        except ValueError as exc:
            self._send_json(h, 400, {"error": str(exc)})
            return
        if page < 1 or not 1 <= size <= 1000:
            self._send_json(h, 400, {"error": "page must be >= 1 and size within 1..1000"})
            return
        with self._lock:
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
            items = [self._served(r) for _, _, r in rows[(page - 1) * size : page * size]]
        self._send_json(h, 200, {"total": len(rows), "page": page, "size": size, "items": items}, trunc)

    def _do_matter(self, h: _Handler, projid: str, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        with self._lock:
            record = self._matters.get(projid)
            served = self._served(record) if record else None
        if served is None:
            self._send_json(h, 404, {"error": f"no matter {projid}"})
        else:
            self._send_json(h, 200, served, trunc)

    def _do_catalogue(self, h: _Handler, _a: str | None, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        self._send_json(h, 200, {"total": len(self._catalogue), "items": self._catalogue}, trunc)

    def _do_acks(self, h: _Handler, _a: str | None, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
        self._send_json(h, 200, {"items": self.acks}, trunc)

    def _do_ack(self, h: _Handler, projid: str, _q: dict[str, list[str]], body: bytes, trunc: bool) -> None:
        try:
            payload = json.loads(body.decode("utf-8"))
            code = payload["archival_code"]
            if not isinstance(code, str) or not code:
                raise ValueError
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            self._send_json(h, 400, {"error": 'expected JSON {"archival_code": "..."}'})
            return
        with self._lock:
            known = projid in self._matters
            if known:
                ack = {"PROJID": projid, "archival_code": code,
                       "received_at": datetime.now(SHANGHAI).isoformat(timespec="seconds")}
                self._acks.append(ack)
        if not known:
            self._send_json(h, 404, {"error": f"no matter {projid}"})
        else:
            self._send_json(h, 200, {"ok": True, "PROJID": projid, "archival_code": code}, trunc)

    def _do_files(self, h: _Handler, fid: str, _q: dict[str, list[str]], _b: bytes, trunc: bool) -> None:
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
            self._send_json(h, 404, {"error": f"no file {fid}"})
            return
        size = len(extra) if extra is not None else path.stat().st_size
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", h.headers.get("Range") or "")
        if m and int(m.group(1)) < size:
            start = int(m.group(1))
            with self._lock:
                self.range_requests += 1
        length = size - start
        h.send_response(206 if start else 200)
        h.send_header("Content-Type", media)
        h.send_header("Content-Length", str(length))
        h.send_header("Accept-Ranges", "bytes")
        if start:
            h.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        h.end_headers()
        to_send = length // 2 if trunc else length
        if extra is not None:
            h.wfile.write(extra[start : start + to_send])
        else:
            with path.open("rb") as f:
                f.seek(start)
                left = to_send
                while left > 0:
                    block = f.read(min(_BLOCK, left))
                    if not block:
                        break
                    h.wfile.write(block)
                    left -= len(block)
        if trunc:
            h.wfile.flush()
            raise _Truncated


def _parse_time(q: dict[str, list[str]], name: str) -> datetime | None:
    values = q.get(name)
    if not values or not values[0]:
        return None
    text = values[0].replace(" ", "+")  # an unencoded "+08:00" arrives as " 08:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name}: not an ISO date-time: {values[0]!r}") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=SHANGHAI)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m guidang_demo.unified",
        description="Serve a unified-system dataset over HTTP (written first if DATA_DIR has none).",
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--count", type=int, default=180)
    parser.add_argument("--flaky", type=float, default=0.0, metavar="SHARE",
                        help="inject 5xx/delays/truncation into this share of requests")
    args = parser.parse_args(argv)
    if not (args.data_dir / MATTERS_FILE).exists():
        summary = write_unified_dataset(args.data_dir, seed=args.seed, count=args.count)
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    faults = FaultPlan.flaky(share=args.flaky) if args.flaky else None
    sim = UnifiedSimulator(args.data_dir, faults=faults, token=args.token)
    try:
        url = sim.start(args.port)
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"serving {args.data_dir} at {url}/api/v1/matters (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
