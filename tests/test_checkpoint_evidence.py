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
from sqlalchemy import create_engine, select, text
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


def _s3_world(world: Path, bucket: str, endpoint: str) -> Path:
    raw = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    raw["repository"] = {"kind": "s3", "bucket": bucket, "endpoint_url": endpoint, "region": "us-east-1",
                         "object_lock_mode": "GOVERNANCE"}
    config = world / "guidang-s3.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return config


def _versions(s3_admin: Any, bucket: str) -> dict[str, int]:
    listing = s3_admin.list_object_versions(Bucket=bucket, Prefix="checkpoints/")
    counts: dict[str, int] = {}
    for v in listing.get("Versions", []):
        counts[v["Key"]] = counts.get(v["Key"], 0) + 1
    return counts


def test_a_truncated_ledger_and_a_row_changed_without_an_event_are_found_and_no_checkpoint_is_rewritten(
    small_world: Path, moto_endpoint: str, s3_lock_bucket: str, s3_admin: Any
) -> None:
    """The forger deletes the ledger's last events and moves the chain head back (the chain verifies),
    and changes a verified matter's row with no event."""
    config = _s3_world(small_world, s3_lock_bucket, moto_endpoint)
    with simulator(small_world):
        for _night in range(2):
            assert run_nightly(load_settings(config), sources=["tzxm"])["status"] == "completed"
    assert _verify(config) == (0, [])
    before = _versions(s3_admin, s3_lock_bucket)
    assert len(before) == 2 and set(before.values()) == {1}

    engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
    try:
        with Session(engine) as s, s.begin():
            last = s.scalars(select(Event).order_by(Event.seq.desc()).limit(3)).all()
            for ev in last:
                s.delete(ev)
            s.flush()
            head = s.scalars(select(Event).order_by(Event.seq.desc()).limit(1)).one()
            s.execute(text("UPDATE event_chain_head SET seq = :n, hash = :h"), {"n": head.seq, "h": head.hash})
            s.execute(text("UPDATE matters SET disposition_date = '2027-01-01' WHERE id = (SELECT min(id) FROM matters"
                           " WHERE state = 'verified')"))
    finally:
        engine.dispose()

    code, findings = _verify(config)
    assert code == 1
    found = {f["code"] for f in findings}
    assert "A-CHECKPOINT-AHEAD" in found and "A-ROW-ALTERED" in found, findings

    with simulator(small_world):
        run_nightly(load_settings(config), sources=["tzxm"])  # an ordinary next night over the forged ledger
    after = _versions(s3_admin, s3_lock_bucket)
    assert {k: after[k] for k in before} == before  # no stored checkpoint written again
    code, findings = _verify(config)
    assert code == 1 and {"A-CHECKPOINT-CONTRADICTED", "A-ROW-ALTERED"} <= {f["code"] for f in findings}, findings


def test_the_newest_checkpoint_erased_for_good_over_a_forged_ledger_is_not_rewritten_in_silence(
    small_world: Path, moto_endpoint: str, s3_lock_bucket: str, s3_admin: Any
) -> None:
    """Object Lock allows it in GOVERNANCE mode to whoever may lift a legal hold and bypass the
    governance: every version of the newest checkpoint deleted (no delete marker left), and the
    ledger edited after the checkpoint before it, its chain recomputed. The next night cannot tell
    this from a store that failed at the end of the anchor's night, and writes the anchor again
    from the forged ledger; `audit verify` names that late anchor for as long as it stands."""
    config = _s3_world(small_world, s3_lock_bucket, moto_endpoint)
    with simulator(small_world):
        for _night in range(2):
            assert run_nightly(load_settings(config), sources=["tzxm"])["status"] == "completed"
    older, newest = sorted(_versions(s3_admin, s3_lock_bucket))

    engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
    try:
        with Session(engine) as s, s.begin():
            older_seq = int(older.split("/")[1].split("-")[0])
            after = s.scalars(select(Event).where(Event.seq > older_seq).order_by(Event.seq).limit(1)).one()
            after.payload = {**after.payload, "forged": True}
            _recompute_chain(s)
    finally:
        engine.dispose()
    for v in s3_admin.list_object_versions(Bucket=s3_lock_bucket, Prefix=newest)["Versions"]:
        s3_admin.put_object_legal_hold(Bucket=s3_lock_bucket, Key=newest, VersionId=v["VersionId"],
                                       LegalHold={"Status": "OFF"})
        s3_admin.delete_object(Bucket=s3_lock_bucket, Key=newest, VersionId=v["VersionId"],
                               BypassGovernanceRetention=True)
    assert newest not in _versions(s3_admin, s3_lock_bucket)

    code, findings = _verify(config)
    assert code == 1 and any(f["code"] == "A-CHECKPOINT-MISSING" and f["where"] == newest for f in findings)

    with simulator(small_world):  # the next night writes the erased anchor again, from the forged ledger
        run_nightly(load_settings(config), sources=["tzxm"])
    assert _versions(s3_admin, s3_lock_bucket)[newest] == 1
    code, findings = _verify(config)
    late = [f for f in findings if f["code"] == "A-CHECKPOINT-LATE"]
    assert [(f["where"], f["severity"]) for f in late] == [(newest, "warning")], findings  # not in silence

    engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
    try:  # hiding that note (the chain recomputed) contradicts the night's own checkpoint
        with Session(engine) as s, s.begin():
            for ev in s.scalars(select(Event).where(Event.kind == "checkpoint-absent")):
                s.delete(ev)
            s.flush()
            _recompute_chain(s)
    finally:
        engine.dispose()
    code, findings = _verify(config)
    assert code == 1 and any(f["code"] == "A-CHECKPOINT-CONTRADICTED" for f in findings), findings
