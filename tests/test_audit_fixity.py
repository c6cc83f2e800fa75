"""`guidang audit fixity` after a demo night, on the filesystem and on S3 (moto server over HTTP): an
untouched archive passes; a flipped byte, a deleted object and an extra object are each found by key;
the result is an event of the ledger; exit 1 when anything is wrong."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app
from ledger.models import Event, MatterRecord, MatterState
from night.engine import run_nightly
from schemas.config import load_settings
from schemas.layout import METADATA_FILE
from tests.world_support import unified_running

runner = CliRunner(env={"GUIDANG_CONFIG": None})


def fixity(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = runner.invoke(app, ["audit", "fixity", "--config", str(config), "--json", *args])
    assert r.exit_code in (0, 1), r.output
    return r.exit_code, json.loads(r.output)


def _night(world: Path, config: Path) -> None:
    with unified_running(world):
        summary = run_nightly(load_settings(config))
    assert summary["status"] == "completed" and summary["totals"]["archived"] > 10


def _packages(world: Path) -> list[MatterRecord]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        rows = list(s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)
                              .order_by(MatterRecord.id)))
        s.expunge_all()
    engine.dispose()
    return rows


def _fixity_events(world: Path) -> list[dict[str, Any]]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        payloads = [ev.payload for ev in s.scalars(select(Event).where(Event.kind == "fixity-checked")
                                                   .order_by(Event.seq))]
    engine.dispose()
    return payloads


def _assert_three_findings(out: dict[str, Any], changed: str, missing: str, extra: str) -> None:
    assert not out["ok"]
    assert (out["changed"], out["missing"], out["unexpected"]) == (1, 1, 1), out["findings"]
    by_code = {f["code"]: f for f in out["findings"]}
    assert by_code["A-OBJECT-CHANGED"]["where"] == changed
    assert "SHA-256" in by_code["A-OBJECT-CHANGED"]["message"] and "SM3" in by_code["A-OBJECT-CHANGED"]["message"]
    assert by_code["A-OBJECT-MISSING"]["where"] == missing
    assert by_code["A-OBJECT-UNEXPECTED"]["where"] == extra


def test_fixity_on_the_filesystem(small_world: Path) -> None:
    config = small_world / "guidang.yaml"
    _night(small_world, config)
    code, out = fixity(config)
    assert code == 0 and out["ok"], out["findings"]
    assert out["packages"] == out["packages_read"] == len(_packages(small_world))
    assert out["objects_read"] == out["objects_listed"] == out["objects_expected"]

    code, out = fixity(config, "--sample", "3")
    assert code == 0 and out["packages_read"] == 3 and out["mode"] == "sample 3"

    archive = small_world / "archive"
    first, second = _packages(small_world)[:2]
    pdf = sorted((archive / first.package_key).rglob("*.pdf"))[0]
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    pdf.write_bytes(bytes(data))
    (archive / second.package_key / METADATA_FILE).unlink()
    (archive / second.package_key / "申报材料" / "extra.pdf").write_bytes(b"%PDF-1.4 not ours")
    code, out = fixity(config)
    assert code == 1
    _assert_three_findings(out, pdf.relative_to(archive).as_posix(), f"{second.package_key}/{METADATA_FILE}",
                           f"{second.package_key}/申报材料/extra.pdf")
    recorded = _fixity_events(small_world)
    assert [p["ok"] for p in recorded] == [True, True, False]
    assert {(f["code"], f["key"]) for f in recorded[-1]["findings"]} == {
        (f["code"], f["where"]) for f in out["findings"]}

    r = runner.invoke(app, ["audit", "fixity", "--config", str(config)])
    assert r.exit_code == 1 and "1 missing, 1 changed, 1 unexpected" in r.output
    assert pdf.relative_to(archive).as_posix() in r.output
    assert runner.invoke(app, ["audit", "fixity", "--config", str(config), "--all", "--sample", "2"]).exit_code == 2


@pytest.fixture
def s3_world(small_world: Path, moto_endpoint: str) -> tuple[Path, Path, str]:
    bucket = "guidang-fixity-" + hashlib.sha256(str(small_world).encode()).hexdigest()[:8]
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    config["repository"] = {"kind": "s3", "bucket": bucket, "prefix": "zwfw", "endpoint_url": moto_endpoint,
                            "region": "us-east-1"}
    path = small_world / "guidang-s3.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return small_world, path, bucket


def test_fixity_on_s3(s3_world: tuple[Path, Path, str], moto_endpoint: str) -> None:
    world, config, bucket = s3_world
    _night(world, config)
    code, out = fixity(config)
    assert code == 0 and out["ok"], out["findings"]
    assert out["objects_read"] == out["objects_listed"] > 50

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    first, second = _packages(world)[:2]
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"zwfw/{first.package_key}/")["Contents"]
    pdf_key = next(o["Key"] for o in listing if o["Key"].endswith(".pdf"))
    data = bytearray(client.get_object(Bucket=bucket, Key=pdf_key)["Body"].read())
    data[7] ^= 0xFF
    client.put_object(Bucket=bucket, Key=pdf_key, Body=bytes(data))  # no Object Lock on this bucket
    client.delete_object(Bucket=bucket, Key=f"zwfw/{second.package_key}/{METADATA_FILE}")
    client.put_object(Bucket=bucket, Key="zwfw/Z109/stray.bin", Body=b"stray")
    code, out = fixity(config)
    assert code == 1
    _assert_three_findings(out, pdf_key.removeprefix("zwfw/"), f"{second.package_key}/{METADATA_FILE}",
                           "Z109/stray.bin")
    assert [p["ok"] for p in _fixity_events(world)] == [True, False]


def test_checkpoints_are_object_locked_where_the_store_has_object_lock(
    small_world: Path, moto_endpoint: str, s3_admin: Any, s3_lock_bucket: str
) -> None:
    config = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
    config["repository"] = {"kind": "s3", "bucket": s3_lock_bucket, "endpoint_url": moto_endpoint,
                            "region": "us-east-1", "object_lock_mode": "GOVERNANCE"}
    path = small_world / "guidang-lock.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    _night(small_world, path)
    keys = [o["Key"] for o in s3_admin.list_objects_v2(Bucket=s3_lock_bucket, Prefix="checkpoints/")["Contents"]]
    assert len(keys) == 1
    head = s3_admin.head_object(Bucket=s3_lock_bucket, Key=keys[0])
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    r = runner.invoke(app, ["audit", "verify", "--config", str(path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["checkpoints"] == 2  # the night's and its batch's 说明文件
