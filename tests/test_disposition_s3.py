"""Holds, destruction and repair on moto's S3 (real HTTP) with Object Lock, the primary in a
GOVERNANCE-locked bucket and a second copy on the filesystem: a hold is the store's legal hold and
its release clears it (not for 永久); a destruction is refused while the store retains the objects
or holds them, and goes through once retain-until has passed, deleting every version on S3 and the
copy's files; a byte flipped in the bucket is repaired from the copy, as a new locked version. And
an S3 bucket as the second copy: missed by one night and caught up by the next, repaired from the
primary, and destroyed together with it through a destruction killed half-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.repositories.base import RepositoryError
from guidang_io.crashpoints import ENV
from ledger.models import MatterState
from night.engine import run_nightly
from schemas.config import load_settings
from schemas.layout import METADATA_FILE
from tests.test_disposition import REPO_ROOT, cli, kinds, rows
from tests.world_support import unified_running


@pytest.fixture
def s3_world(small_world: Path, moto_endpoint: str, s3_lock_bucket: str) -> Path:
    config = small_world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["repository"] = {"kind": "s3", "bucket": s3_lock_bucket, "endpoint_url": moto_endpoint,
                          "region": "us-east-1", "object_lock_mode": "GOVERNANCE"}
    data["replicas"] = [{"name": "local", "repository": {"kind": "fs", "path": "copy2"}}]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (small_world / "copy2").mkdir()
    with unified_running(small_world):
        summary = run_nightly(load_settings(config))
    assert summary["status"] == "completed" and summary["totals"]["archived"] > 10
    return small_world


def keys(s3: Any, bucket: str, package_key: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=package_key + "/").get("Contents", [])]


def legal_holds(s3: Any, bucket: str, package_key: str) -> set[str]:
    return {s3.head_object(Bucket=bucket, Key=k).get("ObjectLockLegalHoldStatus", "OFF")
            for k in keys(s3, bucket, package_key)}


def test_holds_destruction_and_repair_on_s3(s3_world: Path, s3_admin: Any, s3_lock_bucket: str) -> None:
    bucket, copy = s3_lock_bucket, s3_world / "copy2"
    verified = [r for r in rows(s3_world) if r.state == MatterState.VERIFIED]
    permanent = next(r for r in verified if r.retention_period == "Y")
    victim, held, *_ = [r for r in verified if r.retention_period != "Y"]
    assert legal_holds(s3_admin, bucket, victim.package_key) == {"OFF"}
    assert legal_holds(s3_admin, bucket, permanent.package_key) == {"ON"}  # 永久 from the night on

    code, out = cli(s3_world, "disposition", "hold", "--code", held.archival_code, "--code",
                    permanent.archival_code, "--reason", "审计 audit", user="carol")
    assert code == 0 and out["store_legal_hold"] and out["objects"] > 4, out
    assert legal_holds(s3_admin, bucket, held.package_key) == {"ON"}
    code, out = cli(s3_world, "disposition", "release", str(out["hold"]), "--reason", "done", user="carol")
    assert code == 0, out
    assert legal_holds(s3_admin, bucket, held.package_key) == {"OFF"}
    assert legal_holds(s3_admin, bucket, permanent.package_key) == {"ON"}  # 永久 keeps its own

    code, opened = cli(s3_world, "disposition", "open", "--before", "2100-01-01", user="alice")
    review = str(opened["review"])
    others = [c for c in opened["archival_codes"] if c != victim.archival_code]
    cli(s3_world, "disposition", "decide", review, "extend", "--period", "Y", "--reason", "keep",
        *[a for c in others for a in ("--code", c)], user="alice")
    code, out = cli(s3_world, "disposition", "decide", review, "destroy", "--code", victim.archival_code,
                    "--reason", "到期", user="alice")
    assert code == 0, out
    code, out = cli(s3_world, "disposition", "approve", review, user="bob")
    assert code == 0 and out["objects_relocked"] > 0, out
    assert legal_holds(s3_admin, bucket, held.package_key) == {"ON"}  # extended to 永久: locked like 永久

    code, out = cli(s3_world, "disposition", "destroy", review, user="erin")  # retained until its date
    assert code == 1 and "D-RETAINED" in out["blocked"][victim.archival_code], out
    assert len(keys(s3_admin, bucket, victim.package_key)) > 4 and "destruction-blocked" in kinds(s3_world)

    # time passes (the bucket's admin shortens the GOVERNANCE retention, as the calendar would)
    soon = datetime.now(UTC) + timedelta(seconds=2)
    victim_keys = keys(s3_admin, bucket, victim.package_key)
    for k in victim_keys:
        s3_admin.put_object_retention(Bucket=bucket, Key=k, BypassGovernanceRetention=True,
                                      Retention={"Mode": "GOVERNANCE", "RetainUntilDate": soon})
    pdf = next(k for k in victim_keys if k.endswith(".pdf"))
    s3_admin.put_object_legal_hold(Bucket=bucket, Key=pdf, LegalHold={"Status": "ON"})
    time.sleep(2.5)
    code, out = cli(s3_world, "disposition", "destroy", review, user="erin")
    assert code == 1 and "D-LEGAL-HOLD" in out["blocked"][victim.archival_code], out
    s3_admin.put_object_legal_hold(Bucket=bucket, Key=pdf, LegalHold={"Status": "OFF"})
    code, out = cli(s3_world, "disposition", "destroy", review, user="erin")
    assert code == 0 and out["destroyed"] == [victim.archival_code], out

    left = keys(s3_admin, bucket, victim.package_key)
    assert f"{victim.package_key}/{METADATA_FILE}" in left and f"{victim.package_key}/_DESTROYED" in left
    assert not any(k.endswith(".pdf") for k in left)
    versions = s3_admin.list_object_versions(Bucket=bucket, Prefix=pdf)
    assert not versions.get("Versions") and not versions.get("DeleteMarkers")  # the bytes are gone, not hidden
    assert not list((copy / victim.package_key).rglob("*.pdf")) and (copy / victim.package_key / METADATA_FILE).exists()

    r = cli(s3_world, "audit", "verify")
    assert r[0] == 0, r[1]
    code, out = cli(s3_world, "audit", "fixity")
    assert code == 0 and out["destroyed"] == 1 and out["ok"], out["findings"]
    code, out = cli(s3_world, "audit", "fixity", "--copy", "local")
    assert code == 0 and out["ok"], out["findings"]

    # a flipped byte in the locked bucket (a new version) is repaired from the copy
    target = next(k for k in keys(s3_admin, bucket, permanent.package_key) if k.endswith(".pdf"))
    good = s3_admin.get_object(Bucket=bucket, Key=target)["Body"].read()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01
    s3_admin.put_object(Bucket=bucket, Key=target, Body=bytes(bad))
    code, out = cli(s3_world, "audit", "fixity")
    assert code == 0 and [f["where"] for f in out["repaired"]] == [target], out
    assert s3_admin.get_object(Bucket=bucket, Key=target)["Body"].read() == good
    assert s3_admin.head_object(Bucket=bucket, Key=target)["ObjectLockLegalHoldStatus"] == "ON"
    assert json.dumps(out).count("A-OBJECT-REPAIRED") == 1


def s3_files(s3: Any, bucket: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def fs_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_s3_copy_caught_up_repaired_and_destroyed_through_a_kill(
    small_world: Path, moto_endpoint: str, s3_admin: Any
) -> None:
    """The copy is a bucket that does not exist yet on the first night (left out, the night completes),
    is caught up by the next, has a flipped byte repaired from the primary, and loses a destroyed
    record's documents together with the primary in a destruction killed half-way and resumed."""
    bucket = f"guidang-copy-{uuid.uuid4().hex[:12]}"
    config = small_world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["replicas"] = [{"name": "cloud", "repository": {"kind": "s3", "bucket": bucket,
                                                        "endpoint_url": moto_endpoint, "region": "us-east-1"}}]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    primary = small_world / "archive"
    with unified_running(small_world):
        assert run_nightly(load_settings(config))["status"] == "completed"
        s3_admin.create_bucket(Bucket=bucket)
        assert run_nightly(load_settings(config))["status"] == "completed"
    assert "replica-caught-up" in kinds(small_world)
    theirs, ours = s3_files(s3_admin, bucket), fs_files(primary)
    assert len(theirs) > 50 and all(ours[k] == v for k, v in theirs.items()) and len(ours) - len(theirs) <= 1

    pdf = next(k for k in sorted(theirs) if k.endswith(".pdf"))
    bad = bytearray(theirs[pdf])
    bad[10] ^= 0x01
    s3_admin.put_object(Bucket=bucket, Key=pdf, Body=bytes(bad))
    code, out = cli(small_world, "audit", "fixity", "--copy", "cloud")
    assert code == 0 and [f["where"] for f in out["repaired"]] == [pdf], out
    assert s3_admin.get_object(Bucket=bucket, Key=pdf)["Body"].read() == ours[pdf]

    due = [r for r in rows(small_world) if r.state == MatterState.VERIFIED and r.retention_period != "Y"][:2]
    code, opened = cli(small_world, "disposition", "open", "--before", "2100-01-01", user="alice")
    review = str(opened["review"])
    keep = [c for c in opened["archival_codes"] if c not in {r.archival_code for r in due}]
    cli(small_world, "disposition", "decide", review, "extend", "--period", "Y", "--reason", "keep",
        *[a for c in keep for a in ("--code", c)], user="alice")
    cli(small_world, "disposition", "decide", review, "destroy", "--reason", "到期",
        *[a for r in due for a in ("--code", r.archival_code)], user="alice")
    assert cli(small_world, "disposition", "approve", review, user="bob")[0] == 0
    cmd = [sys.executable, "-m", "flows.cli", "disposition", "destroy", review, "--user", "erin",
           "--config", str(config)]
    killed = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, ENV: "destroyed-object:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != ENV})
    assert done.returncode == 0, done.stderr[-2000:]
    for r in due:
        assert not [k for k in s3_files(s3_admin, bucket) if k.startswith(r.package_key) and k.endswith(".pdf")]
        assert not list((primary / r.package_key).rglob("*.pdf"))
        assert f"{r.package_key}/_DESTROYED" in s3_files(s3_admin, bucket)
    for copy in ("primary", "cloud"):
        code, out = cli(small_world, "audit", "fixity", "--copy", copy)
        assert code == 0 and out["ok"] and out["destroyed"] == 2, (copy, out["findings"])


def test_an_older_locked_version_keeps_every_version(moto_endpoint: str, s3_admin: Any, s3_lock_bucket: str) -> None:
    """A delete that would remove the current version and then meet an older one the store still
    protects deletes nothing: the object never falls back to an older (perhaps damaged) version."""
    from connectors.repositories.s3 import S3ObjectRepository
    from tests.s3_support import s3_config

    repo = S3ObjectRepository(s3_config(moto_endpoint, s3_lock_bucket, object_lock_mode="GOVERNANCE"))
    s3_admin.put_object(Bucket=s3_lock_bucket, Key="k/a.pdf", Body=b"old", ObjectLockLegalHoldStatus="ON")
    s3_admin.put_object(Bucket=s3_lock_bucket, Key="k/a.pdf", Body=b"new")
    with pytest.raises(RepositoryError, match="REPO-LOCKED") as refused:
        repo.delete("k/a.pdf")
    assert "version" in str(refused.value) and "legal hold" in str(refused.value)
    assert len(s3_admin.list_object_versions(Bucket=s3_lock_bucket, Prefix="k/a.pdf")["Versions"]) == 2
    assert s3_admin.get_object(Bucket=s3_lock_bucket, Key="k/a.pdf")["Body"].read() == b"new"


def test_a_unit_hold_placed_before_a_night_holds_that_night_s_records_on_the_store(
    small_world: Path, moto_endpoint: str, s3_lock_bucket: str, s3_admin: Any
) -> None:
    """A hold by unit (冻结 of a 实施机构 in dispute) covers the records archived after it was placed:
    the night puts their objects under the store's legal hold as it stores them, and the release
    clears it again (not for 永久); the unit's neighbours are not held."""
    from guidang_demo.unified_data import MATTERS_FILE

    config = small_world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["repository"] = {"kind": "s3", "bucket": s3_lock_bucket, "endpoint_url": moto_endpoint,
                          "region": "us-east-1", "object_lock_mode": "GOVERNANCE"}
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    matters = json.loads((small_world / "sources" / "unified" / MATTERS_FILE).read_text(encoding="utf-8"))
    unit = max({m["DEPTNAME"] for m in matters}, key=[m["DEPTNAME"] for m in matters].count)
    code, out = cli(small_world, "disposition", "hold", "--unit", unit, "--reason", "诉讼 litigation", user="carol")
    assert code == 0 and out["archival_codes"] == [], out  # nothing archived yet: the scope holds what comes
    with unified_running(small_world):
        assert run_nightly(load_settings(config))["status"] == "completed"
    verified = [r for r in rows(small_world) if r.state == MatterState.VERIFIED and r.retention_period != "Y"]
    inside = [r for r in verified if r.agency == unit]
    outside = [r for r in verified if r.agency != unit]
    assert inside and outside
    for r in inside:
        assert legal_holds(s3_admin, s3_lock_bucket, r.package_key) == {"ON"}, r.archival_code
    assert legal_holds(s3_admin, s3_lock_bucket, outside[0].package_key) == {"OFF"}
    code, out = cli(small_world, "disposition", "release", str(out["hold"]), "--reason", "结案", user="carol")
    assert code == 0, out
    assert {r.archival_code for r in inside} <= set(out["archival_codes"])
    for r in inside:
        assert legal_holds(s3_admin, s3_lock_bucket, r.package_key) == {"OFF"}, r.archival_code
