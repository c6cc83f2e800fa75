"""One night end to end over the demo world: the walking skeleton's acceptance checks.

Real parts throughout: the unified simulator over HTTP on 127.0.0.1, the self-built systems as
SQLite databases read through their guidang.yaml description only, the fs repository on disk, the
S3 repository against moto in server mode, the ledger in SQLite.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from lxml import etree
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from ledger.models import MatterRecord, MatterState, QuarantineEntry
from night.engine import run_nightly
from schemas.config import load_settings
from schemas.layout import COMPLETION_MARKER, MANIFEST_SHA256, MANIFEST_SM3
from tests.world_support import unified_running

# Every kind of bad input the demo world carries, by the reason it must be quarantined for.
EXPECTED_REASONS = {
    "Q-PDF-BROKEN",  # a truncated PDF (unified and tzxm)
    "Q-DOC-FETCH-FAILED",  # a document the source cannot deliver (404, NULL BLOB, missing file)
    "Q-UNKNOWN-MATTER-TYPE",  # SERVICETYPE 99
    "Q-SOURCE-INVALID",  # a mandatory field missing
    "Q-DOC-UNSAFE-NAME",  # ../../etc/passwd
    "Q-DOC-DIGEST-MISMATCH",  # the source's SHA256 does not match the bytes
    "Q-DATES-OUT-OF-ORDER",  # completed before it was accepted
    "Q-RETENTION-NO-RULE",  # 职业技能等级认定 has no rule in the demo workbook
}


def night(world: Path, config: str = "guidang.yaml") -> dict[str, Any]:
    with unified_running(world):
        return run_nightly(load_settings(world / config))


def archive_listing(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def matter_rows(world: Path) -> list[tuple[Any, ...]]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with engine.connect() as c:
        rows = c.execute(text("SELECT * FROM matters ORDER BY id")).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def ledger_session(world: Path) -> Session:
    return Session(create_engine(f"sqlite:///{world / 'ledger.sqlite'}"))


def parse_manifest(data: str) -> dict[str, str]:
    out = {}
    for line in data.splitlines():
        digest, path = line.split("  ", 1)
        out[path] = digest
    return out


def test_first_night_archives_good_matters_and_quarantines_each_defect(world: Path) -> None:
    summary = night(world)
    totals = summary["totals"]
    assert summary["status"] == "completed"
    assert totals["collected"] >= 300
    assert set(summary["sources"]) == {"unified", "tzxm", "sjjc"}
    assert totals["collected"] == sum(
        totals[k] for k in ("archived", "quarantined", "not_in_scope", "waiting", "unchanged", "pending")
    )
    assert totals["pending"] == 0
    assert totals["not_in_scope"] > 0  # 婚姻登记档案查询 is 不归档
    assert set(summary["quarantine_reasons"]) == EXPECTED_REASONS

    with ledger_session(world) as s:
        verified = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)).all()
        quarantined = s.scalars(select(QuarantineEntry)).all()
    assert len(verified) == totals["archived"]
    assert len(quarantined) == totals["quarantined"]
    assert all(r.acknowledged_at is not None for r in verified)  # 归档回传 after verification
    for q in quarantined:  # every reason names the matter and what is wrong
        assert q.findings and all(f["where"] and f["message"] for f in q.findings)
        assert q.project_id in json.dumps(q.findings, ensure_ascii=False)

    # every archived matter is a complete package whose manifests match the bytes we hash ourselves
    archive = world / "archive"
    for rec in verified:
        pkg = archive / rec.package_key
        assert (pkg / COMPLETION_MARKER).is_file(), rec.archival_code
        sha = parse_manifest((pkg / MANIFEST_SHA256).read_text(encoding="utf-8"))
        sm3 = parse_manifest((pkg / MANIFEST_SM3).read_text(encoding="utf-8"))
        assert sha.keys() == sm3.keys() and len(sha) >= 2
        for rel, digest in sha.items():
            data = (pkg / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, f"{rec.archival_code}/{rel}"
            assert hashlib.new("sm3", data).hexdigest() == sm3[rel], f"{rec.archival_code}/{rel}"
    # the licences (事项类型 01) are sealed OFD documents: archived with their pages and seal results
    ofd_entries = []
    for rec in verified:
        root = etree.parse(str(archive / rec.package_key / "元数据.xml")).getroot()
        ofd_entries += [f for f in root.findall("文件信息/文件") if f.findtext("格式") == "OFD"]
    assert len(ofd_entries) >= 20
    for f in ofd_entries:
        assert int(f.findtext("页数")) >= 1 and f.findtext("格式版本") == "1.1"
        seals = f.findall("签名信息/签名")
        # real GB/T 38540 seals made at world build time: verified, every one
        assert seals and all(s.findtext("状态") == "有效" and s.findtext("签名内容完整") == "true" for s in seals)
    # among them the archival profile and documents sealed twice
    assert {f.findtext("格式子类型") for f in ofd_entries} == {"OFD", "OFD-A"}
    assert any(len(f.findall("签名信息/签名")) == 2 for f in ofd_entries)
    # 件号 are gap-free per sequence
    seqs: dict[tuple[Any, ...], list[int]] = {}
    for rec in verified:
        seqs.setdefault((rec.fonds, rec.category_code, rec.year, rec.retention_period, rec.org_code), []).append(
            rec.item_number
        )
    for key, items in seqs.items():
        assert sorted(items) == list(range(1, len(items) + 1)), key


def test_second_night_archives_nothing_again(world: Path) -> None:
    first = night(world)
    assert first["totals"]["archived"] > 0
    files_before = archive_listing(world / "archive")
    rows_before = matter_rows(world)

    second = night(world)
    assert second["status"] == "completed"
    assert second["totals"]["archived"] == 0
    assert second["totals"]["quarantined"] == 0
    after = archive_listing(world / "archive")
    assert {k: after.get(k) for k in files_before} == files_before  # nothing rewritten, nothing removed
    added = set(after) - set(files_before)  # only the second night's ledger checkpoint
    assert len(added) == 1 and next(iter(added)).startswith("checkpoints/"), added
    assert matter_rows(world) == rows_before


@pytest.fixture
def s3_world(small_world: Path, moto_endpoint: str) -> tuple[Path, str]:
    # the small world (every defect kind, three sources): a package is stored the same way whatever
    # the night's size, and moto answers some 150 requests a second here
    world = small_world
    bucket = "guidang-archive-" + hashlib.sha256(str(world).encode()).hexdigest()[:8]
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    # every object's stored checksum is compared on write anyway; this test re-reads every byte itself
    config["repository"] = {"kind": "s3", "bucket": bucket, "prefix": "zwfw", "endpoint_url": moto_endpoint,
                            "region": "us-east-1", "verify_sample_rate": 0.1}
    (world / "guidang-s3.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return world, bucket


def test_night_into_s3_stores_every_package_verifiably(s3_world: tuple[Path, str], moto_endpoint: str) -> None:
    world, bucket = s3_world
    summary = night(world, "guidang-s3.yaml")
    assert summary["status"] == "completed" and summary["totals"]["archived"] > 0
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")

    def read(key: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=f"zwfw/{key}")["Body"].read()

    with ledger_session(world) as s:
        verified = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)).all()
    assert len(verified) == summary["totals"]["archived"]
    checked = 0
    for rec in verified:
        read(f"{rec.package_key}/{COMPLETION_MARKER}")
        manifest = parse_manifest(read(f"{rec.package_key}/{MANIFEST_SHA256}").decode("utf-8"))
        for rel, digest in manifest.items():
            assert hashlib.sha256(read(f"{rec.package_key}/{rel}")).hexdigest() == digest
            checked += 1
    assert checked >= 2 * len(verified)
    assert not (world / "archive").exists() or not any((world / "archive").rglob("*.pdf"))


def test_each_fonds_gets_one_dat93_batch_listing_exactly_the_archived_matters(world: Path) -> None:
    from lxml import etree

    from packager.transfer import CATALOGUE_FILE, README_FILE, REGISTER_HTML_FILE, REGISTER_XML_FILE

    summary = night(world)
    archive = world / "archive"
    batches = sorted(p for p in (archive / "transfers").iterdir())
    assert [b.name for b in batches] == summary["transfer_batches"] and len(batches) == 1  # the demo has one fonds
    batch = batches[0]
    assert {p.name for p in batch.iterdir()} == {CATALOGUE_FILE, README_FILE, REGISTER_XML_FILE, REGISTER_HTML_FILE}

    with ledger_session(world) as s:
        verified = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)).all()
    catalogue = etree.parse(str(batch / CATALOGUE_FILE)).getroot()
    listed = [e.findtext("档号") for e in catalogue.findall("条目")]
    assert sorted(listed) == sorted(r.archival_code for r in verified)
    assert [int(e.findtext("顺序号")) for e in catalogue.findall("条目")] == list(range(1, len(listed) + 1))

    register = etree.parse(str(batch / REGISTER_XML_FILE)).getroot()
    # the documents only (they live in the material folders), as 元数据's 总字节数 counts them
    stored = sum(p.stat().st_size for r in verified for p in (archive / r.package_key).glob("*/*") if p.is_file())
    assert int(register.findtext("字节数")) == stored
    assert register.findtext("移交数据量") == f"{stored / 1e9:.3f}"
    assert int(register.findtext("移交电子档案数量")) == len(verified)


def test_a_night_larger_than_the_batch_limit_is_handed_over_in_several_batches_in_archival_code_order(
    world: Path,
) -> None:
    from packager.transfer import CATALOGUE_FILE

    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    config["transfer_batch_max"] = 7
    (world / "limited.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    summary = night(world, "limited.yaml")

    with ledger_session(world) as s:
        verified = s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)).all()
    assert len(verified) > 2 * 7  # the demo night needs three batches or more at this limit
    listed: dict[str, list[str]] = {}
    for batch_id in summary["transfer_batches"]:
        catalogue = etree.parse(str(world / "archive" / "transfers" / batch_id / CATALOGUE_FILE)).getroot()
        listed[batch_id] = [e.findtext("档号") or "" for e in catalogue.findall("条目")]
    assert len(listed) == -(-len(verified) // 7) and all(len(codes) <= 7 for codes in listed.values())
    in_order = [code for codes in listed.values() for code in codes]
    assert in_order == sorted(r.archival_code for r in verified)  # every matter once, batches in 档号 order
    assert {r.archival_code: r.batch_id for r in verified} == {c: b for b, codes in listed.items() for c in codes}


def test_backfill_window_archives_without_moving_the_watermark(world: Path) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    with unified_running(world):
        summary = run_nightly(
            load_settings(world / "guidang.yaml"),
            since=datetime(2026, 11, 21, tzinfo=tz),
            until=datetime(2026, 11, 22, tzinfo=tz),
        )
    assert summary["status"] == "completed"
    assert 0 < summary["totals"]["collected"] < 300  # one day of six
    with ledger_session(world) as s:
        assert s.execute(text("SELECT count(*) FROM watermarks")).scalar() == 0
        completed = [r.completed_at.astimezone(tz).date() for r in s.scalars(select(MatterRecord)).all()]
    assert completed and all(d.isoformat() <= "2026-11-22" for d in completed)
