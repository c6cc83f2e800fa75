"""A reader that stops reading (`guidang audit verify | head -3`) never changes the exit code that
reports findings: the real command line in its own process, its stdout a pipe whose reader is gone."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from ledger import holds
from ledger.store import Ledger
from schemas.findings import Finding

ROOT = Path(__file__).resolve().parents[1]


def _world(tmp_path: Path, *, entries: int) -> Path:
    config = tmp_path / "guidang.yaml"
    config.write_text(
        "fonds:\n  - code: Z109\n    name: 测试全宗\n"
        "ledger_url: sqlite:///ledger.sqlite\n"
        "repository:\n  kind: fs\n  path: archive\n"
        "sources:\n  - name: unified\n    kind: unified\n    base_url: http://127.0.0.1:9\n    retries: 0\n",
        encoding="utf-8",
    )
    (tmp_path / "archive").mkdir()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger, ledger.transaction() as s:
        for n in range(entries):  # each writes an event to the hash chain
            where = f"unified/P{n} 申报材料/文件{n}.pdf"
            hold = holds.Hold("unified", f"P{n}", None, None, {"matter": {}})
            holds.quarantine(s, hold, [Finding("Q-PDF-BROKEN", where, f"{where}: does not open")], run_id=None)
    return config


def _into_a_closed_pipe(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run `guidang args` with stdout a pipe nobody reads any more (as after `| head` has exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=cwd, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_audit_verify_of_a_tampered_ledger_exits_1_into_a_closed_pipe(tmp_path: Path) -> None:
    config = _world(tmp_path, entries=40)
    code, stderr = _into_a_closed_pipe(["audit", "verify", "-c", str(config)], tmp_path)
    assert code == 0, stderr  # intact: the closed pipe alone is no failure
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    assert db.execute("UPDATE events SET project_id = 'P8' WHERE project_id = 'P7'").rowcount == 1
    db.commit()
    db.close()
    for args in (["audit", "verify", "-c", str(config)], ["audit", "verify", "-c", str(config), "--json"]):
        code, stderr = _into_a_closed_pipe(args, tmp_path)
        assert code == 1, stderr
        assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr


def test_quarantine_list_into_a_closed_pipe_still_exits_0(tmp_path: Path) -> None:
    config = _world(tmp_path, entries=5)
    code, stderr = _into_a_closed_pipe(["quarantine", "list", "-c", str(config)], tmp_path)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
