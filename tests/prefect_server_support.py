"""Test-only makers for the tests that run Prefect: a real `prefect server start` on a free port with its
own PREFECT_HOME (its database copied from one migrated once per session), processes started in
their own session and always stopped, a local HTTP receiver for webhook notifications, and the
server's REST API read with plain HTTP."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Prefect or guidang setting, plus `extra`: what a fresh
    operator's shell has, so nothing the test runner set can make a deployment work by accident."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GUIDANG_", "PYTHONPATH"))}
    return env | extra


@pytest.fixture(scope="session")
def prefect_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prefect's own database, migrated once for the test session by `prefect server database upgrade`.

    A server (or the temporary server of `--orchestrator prefect`) started on an empty PREFECT_HOME
    first applies every Prefect migration: 13 of its 22 s to healthy on the CI machine. A test's
    home starts from a copy of this file instead (`seeded_home`), the schema Prefect itself built;
    what the test checks (our flows, deployments, events) is the same either way. Under
    pytest-xdist the workers share one copy: the first to need it builds it under a lock."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's, not an older one's
    home = root / "prefect-template"
    with (root / "prefect-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        db = home / "prefect.db"
        if not db.is_file():
            home.mkdir(exist_ok=True)
            env = clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
            done = subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                                  env=env, cwd=home, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0 and db.is_file(), done.stdout[-2000:] + done.stderr[-3000:]
    return db


def seeded_home(home: Path, prefect_db: Path) -> Path:
    """`home` (created) as a PREFECT_HOME whose database is a copy of the migrated `prefect_db`."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(prefect_db, home / "prefect.db")
    return home


class Processes:
    """Processes started for one test, each in its own session, stopped (group and all) at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], *, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)  # the process's own group: the runs a worker or serve started go too
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for _name, proc in reversed(self.started):
            self.stop(proc)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (httpx.TransportError, OSError):  # not up yet; a refused request (4xx) is a failure
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class Api:
    """The server's REST API over real HTTP (the checks read what operations would see)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.url}{path}", timeout=30)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(f"{self.url}{path}", json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def healthy(self) -> bool:
        return self.get("/health") is True

    def flow_runs(self, **flow_run_filter: Any) -> list[dict[str, Any]]:
        return self.post("/flow_runs/filter", {"flow_runs": flow_run_filter, "limit": 200})

    def logs(self, flow_run_ids: list[str]) -> list[dict[str, Any]]:
        return self.post("/logs/filter", {"logs": {"flow_run_id": {"any_": flow_run_ids}}, "limit": 200})

    def events(self, prefix: str) -> list[dict[str, Any]]:
        body = {"filter": {"event": {"prefix": [prefix]}}, "limit": 50}  # the server's most per page
        return self.post("/events/filter", body)["events"]

    def deployment(self, full_name: str) -> dict[str, Any] | None:
        r = httpx.get(f"{self.url}/deployments/name/{full_name}", timeout=30)
        return r.json() if r.status_code == 200 else None


@contextmanager
def prefect_server(processes: Processes, home: Path, port: int) -> Iterator[Api]:
    """`prefect server start` as operations start it (SQLite in its own PREFECT_HOME; analytics off)."""
    env = clean_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    proc = processes.start("server", [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                      "--port", str(port)], env=env, cwd=home.parent)
    api = Api(f"http://127.0.0.1:{port}/api")
    try:
        wait_for(lambda: proc.poll() is None and api.healthy(), "the Prefect server", timeout=180)
    except AssertionError:
        raise AssertionError("the Prefect server did not start:\n" + processes.log("server")[-3000:]) from None
    yield api


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint standing in for the operations chat's webhook: every POST body kept."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                received.append(json.loads(body))
            except ValueError:
                received.append({"raw": body.decode("utf-8", "replace")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
