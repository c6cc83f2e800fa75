"""The console served for real over a world a real night archived: uvicorn on a free 127.0.0.1 port in
a thread, users of every role (two approvers, so that one may be an appraiser) in the world's
guidang.yaml, and a clock the test can advance."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from custody.web.auth import Clock
from night.engine import run_nightly
from schemas.config import load_settings
from tests.world_support import unified_running

KEY_ENV = "GUIDANG_TEST_WEB_KEY"
PASSWORDS = {"audra": ("auditor", "audit-pass-1"), "archie": ("archivist", "archive-pass-1"),
             "opal": ("operations", "ops-pass-1"), "vera": ("approver", "approve-pass-1"),
             "ward": ("approver", "approve-pass-2")}


@dataclass
class Console:
    world: Path
    url: str
    clock: Clock
    summary: dict[str, Any]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    @contextmanager
    def signed_in(self, username: str) -> Iterator[httpx.Client]:
        with self.client() as c:
            sign_in(c, username, PASSWORDS[username][1])
            yield c


def csrf_of(page: str) -> str:
    import re

    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "the form carries no CSRF token"
    return m.group(1)


def sign_in(c: httpx.Client, username: str, password: str) -> httpx.Response:
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"username": username, "password": password, "csrf": token, "next": "/"})
    assert r.status_code == 303, r.text
    return r


def add_users(world: Path) -> None:
    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=1, memory_cost=8192)  # cheap for tests; verification reads the cost
    config = world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["web"] = {
        "secret_key_env": KEY_ENV,
        "session_minutes": 30,
        "users": [{"username": u, "role": role, "password_hash": hasher.hash(pw)}
                  for u, (role, pw) in PASSWORDS.items()],
    }
    config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(world: Path) -> Iterator[tuple[str, Clock]]:
    """The real app under uvicorn in a thread until the block ends."""
    import uvicorn

    from custody.web.app import create_app

    clock = Clock()
    app = create_app(load_settings(world / "guidang.yaml"), clock=clock)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", clock
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def console(small_pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    world = tmp_path_factory.mktemp("web") / "world"
    shutil.copytree(small_pristine, world)
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = "k" * 16 + os.urandom(16).hex()
    try:  # the unified system stays up: the 对账 page asks it for its counts
        with unified_running(world):
            summary = run_nightly(load_settings(world / "guidang.yaml"))
            assert summary["status"] == "completed"
            add_users(world)
            with serve(world) as (url, clock):
                yield Console(world, url, clock, summary)
    finally:
        if old is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = old
