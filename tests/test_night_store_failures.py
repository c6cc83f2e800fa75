"""A night whose store or whose steps fail says so: failed (exit 1), the store's error in the
summary, one ERROR line per failed step naming it, the stored counts true. Real S3 (moto behind the
fault proxy) and a real file-system archive."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from night.engine import run_nightly
from night.report import summary_text
from schemas.config import load_settings
from tests.world_support import simulator


def _config(world: Path, **changes: Any) -> Path:
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    config.update(changes)
    path = world / "guidang-test.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_store_that_stops_answering_fails_the_source_with_its_error(
    small_world: Path, s3_bucket: str, s3_fault_proxy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(small_world, repository={"kind": "s3", "bucket": s3_bucket, "endpoint_url": s3_fault_proxy.url,
                                              "region": "us-east-1"})
    s3_fault_proxy.always("PUT", "500")  # the store is down for the whole transfer phase
    with simulator(small_world), caplog.at_level(logging.INFO, logger="guidang"):
        summary = run_nightly(load_settings(config), sources=["tzxm"])
    assert summary["status"] == "failed"
    tzxm = summary["sources"]["tzxm"]
    assert tzxm["archived"] == 0 and tzxm.get("stored", 0) == 0 and summary["stored"]["packages"] == 0
    assert tzxm["pending"] >= 1
    assert "repository" in tzxm["error"] and "did not store" in tzxm["error"]
    assert any(m.startswith("source tzxm failed") for m in _errors(caplog)), _errors(caplog)
    assert any("checkpoint" in f for f in summary["failures"])  # the night's anchor did not reach the store
    assert "! tzxm: the repository did not store" in summary_text(summary)
    # each failure after its retries was asked once; then the store counted as down for the night
    assert len(s3_fault_proxy.actions("PUT")) <= 5 * 5, len(s3_fault_proxy.actions("PUT"))

    s3_fault_proxy.reset()  # back up: the next night stores what waited, and completes
    with simulator(small_world):
        second = run_nightly(load_settings(config), sources=["tzxm"])
    assert second["status"] == "completed", second
    assert second["totals"]["pending"] == 0 and second["sources"]["tzxm"]["stored"] == tzxm["pending"]


def test_a_failed_transfer_batch_is_one_error_line_and_in_the_summary(
    small_world: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_settings(small_world / "guidang.yaml")
    archive = config.resolve(config.repository.path)  # type: ignore[union-attr]
    archive.mkdir(parents=True, exist_ok=True)
    (archive / "transfers").write_text("not a folder", encoding="utf-8")  # no batch can be stored
    with simulator(small_world), caplog.at_level(logging.INFO, logger="guidang"):
        summary = run_nightly(config, sources=["tzxm"])
    assert summary["status"] == "failed"
    batch_lines = [m for m in _errors(caplog) if "transfer batch" in m]
    assert len(batch_lines) == 1, _errors(caplog)
    assert any("transfer batch" in f for f in summary["failures"])
    assert summary["sources"]["tzxm"]["stored"] == summary["stored"]["packages"] > 0  # the packages are in
    assert "transfer batch" in summary_text(summary)


def test_failed_acknowledgements_are_one_error_line_and_in_the_summary(
    small_world: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from guidang_demo.faults import Fault, FaultPlan

    refuse = FaultPlan(faults=(Fault("status", ("ack",), every=1, status=400),))  # 归档回传 refused
    with simulator(small_world, refuse), caplog.at_level(logging.INFO, logger="guidang"):
        summary = run_nightly(load_settings(small_world / "guidang.yaml"), sources=["unified"])
    unified = summary["sources"]["unified"]
    assert unified["unacknowledged"] == unified["stored"] > 0  # every stored matter, retried next night
    lines = [m for m in _errors(caplog) if "acknowledgement 归档回传" in m]
    assert len(lines) == 1 and f"of {unified['unacknowledged']} matter(s)" in lines[0], _errors(caplog)
    assert f"! unified: acknowledgement 归档回传 of {unified['unacknowledged']}" in summary_text(summary)


def test_a_store_answering_slowdown_to_every_put_fails_the_source_with_its_error(
    small_world: Path, s3_bucket: str, s3_fault_proxy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(small_world, repository={"kind": "s3", "bucket": s3_bucket, "endpoint_url": s3_fault_proxy.url,
                                              "region": "us-east-1", "max_attempts": 2})
    s3_fault_proxy.always("PUT", "503:SlowDown")  # throttled for the whole transfer phase
    with simulator(small_world), caplog.at_level(logging.INFO, logger="guidang"):
        summary = run_nightly(load_settings(config), sources=["tzxm"])
    assert summary["status"] == "failed"
    tzxm = summary["sources"]["tzxm"]
    assert tzxm.get("stored", 0) == 0 and summary["stored"]["packages"] == 0 and tzxm["pending"] >= 1
    assert "did not store" in tzxm["error"] and "SlowDown" in tzxm["error"], tzxm["error"]
    assert len([m for m in _errors(caplog) if m.startswith("source tzxm failed")]) == 1, _errors(caplog)
    assert "! tzxm: the repository did not store" in summary_text(summary)
    assert 0 < len(s3_fault_proxy.actions("PUT")) <= 5 * 2


def _mount_small_tmpfs(where: Path, size: str, *, remount: bool = False) -> None:
    where.mkdir(parents=True, exist_ok=True)
    options = f"remount,size={size}" if remount else f"size={size}"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (a full disk needs one): {done.stderr.strip()}")


def test_an_archive_disk_that_fills_mid_chunk_fails_the_source_and_the_next_night_stores_the_rest(
    small_world: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fs archive on a real file system that fills (a tmpfs of 160 KiB, about half the night's
    packages): no space left (ENOSPC) is the store's failure like a store that stops answering: the
    source fails naming it, its matters stay pending and are counted so, nothing half-written is
    left, and once there is room the next night stores them."""
    disk = small_world / "small-disk"
    _mount_small_tmpfs(disk, "160k")
    try:
        (disk / "archive").mkdir()
        config = _config(small_world, repository={"kind": "fs", "path": str(disk / "archive")})
        with simulator(small_world), caplog.at_level(logging.INFO, logger="guidang"):
            summary = run_nightly(load_settings(config), sources=["tzxm"])
        assert summary["status"] == "failed", summary
        tzxm = summary["sources"]["tzxm"]
        assert "did not store" in tzxm["error"] and "REPO-FULL" in tzxm["error"], tzxm["error"]
        assert "No space left on device" in tzxm["error"]
        assert len([m for m in _errors(caplog) if m.startswith("source tzxm failed")]) == 1, _errors(caplog)
        assert tzxm.get("stored", 0) == summary["stored"]["packages"] == _verified(small_world)
        assert tzxm["pending"] >= 1 and tzxm["archived"] + tzxm["pending"] == 6, tzxm  # the 6 sound matters
        assert not list((disk / "archive").rglob(".guidang-tmp-*"))

        _mount_small_tmpfs(disk, "4m", remount=True)  # room again
        with simulator(small_world):
            second = run_nightly(load_settings(config), sources=["tzxm"])
        assert second["status"] == "completed", second
        assert second["totals"]["pending"] == 0 and _verified(small_world) == 6
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _verified(world: Path) -> int:
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from ledger.models import MatterRecord, MatterState

    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    try:
        with Session(engine) as s:
            return int(s.scalar(select(func.count()).select_from(MatterRecord)
                                .where(MatterRecord.state == MatterState.VERIFIED)) or 0)
    finally:
        engine.dispose()
