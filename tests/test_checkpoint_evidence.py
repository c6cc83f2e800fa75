"""Checkpoints are write-once evidence. On S3 with Object Lock (moto over real HTTP): after a forged
ledger (an event changed, every later hash recomputed) and a plain DELETE of the checkpoint object
(a delete marker over it), `audit verify` reads the checkpoint's earlier version and reports both
the delete marker (A-CHECKPOINT-DELETED) and the contradiction; the next night does not write the
checkpoint again from the forged ledger, and the audit still fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app
from ledger.models import Event
from night.engine import run_nightly
from schemas.config import load_settings
from tests.test_audit_verify import _recompute_chain
from tests.world_support import simulator

runner = CliRunner(env={"GUIDANG_CONFIG": None})


def _verify(config: Path) -> tuple[int, list[dict[str, Any]]]:
    r = runner.invoke(app, ["audit", "verify", "--config", str(config), "--json"])
    return r.exit_code, json.loads(r.output)["findings"]


def test_a_deleted_checkpoint_over_a_forged_ledger_is_found_and_never_rewritten(
    small_world: Path, moto_endpoint: str, s3_lock_bucket: str, s3_admin: Any
) -> None:
    raw = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    raw["repository"] = {"kind": "s3", "bucket": s3_lock_bucket, "endpoint_url": moto_endpoint,
                         "region": "us-east-1", "object_lock_mode": "GOVERNANCE"}
    config = small_world / "guidang-s3.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with simulator(small_world):
        assert run_nightly(load_settings(config), sources=["tzxm"])["status"] == "completed"
    assert _verify(config) == (0, [])
    listed = s3_admin.list_objects_v2(Bucket=s3_lock_bucket, Prefix="checkpoints/")["Contents"]
    (key,) = [o["Key"] for o in listed]

    engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
    try:
        with Session(engine) as s, s.begin():  # the forger: an event changed, the chain recomputed
            first = s.scalars(select(Event).where(Event.kind == "verified").order_by(Event.seq).limit(1)).one()
            first.payload = {**first.payload, "marker_sha256": "0" * 64}
            _recompute_chain(s)
    finally:
        engine.dispose()
    s3_admin.delete_object(Bucket=s3_lock_bucket, Key=key)  # a delete marker: Object Lock allows it

    code, findings = _verify(config)
    assert code == 1
    assert any(f["code"] == "A-CHECKPOINT-DELETED" and f["where"] == key for f in findings), findings
    assert any(f["code"] == "A-CHECKPOINT-CONTRADICTED" and key in f["where"] for f in findings), findings

    with simulator(small_world):
        run_nightly(load_settings(config), sources=["tzxm"])  # an ordinary next night
    versions = s3_admin.list_object_versions(Bucket=s3_lock_bucket, Prefix=key)
    assert len(versions.get("Versions", [])) == 1  # the original only: never written again
    assert [m["IsLatest"] for m in versions.get("DeleteMarkers", [])] == [True]
    code, findings = _verify(config)
    assert code == 1 and any(f["code"] == "A-CHECKPOINT-CONTRADICTED" for f in findings), findings


def test_a_stored_checkpoint_deleted_from_a_file_system_archive_is_not_written_again(
    small_world: Path, caplog: Any
) -> None:
    """On a store without versions the ledger is what remembers: the next night notes the anchors it
    finds stored (`checkpoint-stored`), and one of them deleted later is reported, never rewritten."""
    import logging

    config = load_settings(small_world / "guidang.yaml")
    with simulator(small_world):
        run_nightly(config, sources=["tzxm"])
        run_nightly(load_settings(small_world / "guidang.yaml"), sources=["tzxm"])  # notes the first anchor
    archive = config.resolve(config.repository.path)  # type: ignore[union-attr]
    first = sorted((archive / "checkpoints").iterdir())[0]
    first.chmod(0o644)
    first.unlink()  # someone with delete rights on the archive
    with simulator(small_world), caplog.at_level(logging.INFO, logger="guidang"):
        run_nightly(load_settings(small_world / "guidang.yaml"), sources=["tzxm"])
    assert not first.exists()
    assert any("are not written again" in r.getMessage() and first.name in r.getMessage()
               for r in caplog.records if r.levelno >= logging.ERROR)
    code, findings = _verify(small_world / "guidang.yaml")
    assert code == 1 and any(f["code"] == "A-CHECKPOINT-MISSING" and first.name in f["where"] for f in findings)
