"""Transient faults are not bad input; the archive keeps what it holds.

- A night through a flaky unified system (5xx, timeouts, truncated bodies) and a flaky S3 store
  (PUTs failing part of the time) ends with every good matter archived, exactly as a night without
  faults; only the matter whose source digest is wrong is quarantined for it.
- Object Lock: every object of every package carries retention until the disposition date, and
  永久 packages a legal hold.
- 补充材料: a matter changed at its source after it was archived is archived again as version 2,
  beside version 1, which stays byte-identical.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from guidang_demo.pdfs import make_pdf
from guidang_demo.unified_simulator import FaultPlan
from ledger.models import MatterRecord, MatterState, Watermark
from night.engine import run_nightly
from schemas.config import load_settings
from tests.world_support import outcome, simulator


def rewrite_config(world: Path, **changes: Any) -> Path:
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        if dotted == "unified":
            next(s for s in config["sources"] if s["name"] == "unified").update(value)
        else:
            config[dotted] = value
    path = world / "guidang-test.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path




@pytest.fixture(scope="module")
def clean_outcome(
    small_pristine: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    world = tmp_path_factory.mktemp("clean") / "world"
    shutil.copytree(small_pristine, world)
    with simulator(world):
        assert run_nightly(load_settings(world / "guidang.yaml"))["status"] == "completed"
    return outcome(world)


def test_flaky_source_and_flaky_store_still_archive_every_good_matter(
    small_world: Path, clean_outcome: Any, moto_endpoint: str, s3_bucket: str, s3_fault_proxy: Any
) -> None:
    good, defects = clean_outcome
    victim = sorted(pid for src, pid in good if src == "unified")[0]  # its digest will be served wrong
    config = rewrite_config(
        small_world,
        unified={"timeout_seconds": 0.5, "retries": 6, "backoff_seconds": 0.02},
        repository={"kind": "s3", "bucket": s3_bucket, "endpoint_url": s3_fault_proxy.url, "region": "us-east-1"},
    )
    # a third of the first 90 PUTs fail, six times in each way a store or a network can fail one (the
    # night makes about 370; each failure costs botocore's backoff, up to a second, so not all of them)
    s3_fault_proxy.plan(
        "PUT",
        [
            "ok",
            "ok",
            "503:SlowDown",
            "ok",
            "ok",
            "500",
            "ok",
            "ok",
            "reset",
            "ok",
            "ok",
            "drop-after",
            "ok",
            "ok",
            "drop",
        ]
        * 6,
    )
    faults = FaultPlan.flaky(share=0.12, delay_seconds=1.0, seed=11)
    faults = FaultPlan(faults=faults.faults, wrong_digest=frozenset({victim}), seed=faults.seed)

    with simulator(small_world, faults) as sim:
        for _night in range(3):  # what a night leaves pending, the next one takes
            summary = run_nightly(load_settings(config))
            if summary["status"] == "completed" and summary["totals"]["pending"] == 0:
                break
    assert sum(sim.faults_served.values()) >= 5, sim.faults_served  # the source really misbehaved
    assert {"503:SlowDown", "500", "reset", "drop-after", "drop"} <= set(s3_fault_proxy.actions("PUT"))

    verified, quarantined = outcome(small_world)
    assert verified == good - {("unified", victim)}  # every good matter, and nothing else
    assert quarantined.keys() == defects.keys() | {("unified", victim)}  # no good matter quarantined
    assert quarantined[("unified", victim)] == ["Q-DOC-DIGEST-MISMATCH"]
    for key, codes in defects.items():
        assert quarantined[key] == codes  # a hiccup never changed why a bad matter is held


def test_object_lock_retention_and_legal_hold_on_every_object(
    small_world: Path, moto_endpoint: str, s3_lock_bucket: str, s3_admin: Any
) -> None:
    config = rewrite_config(
        small_world,
        repository={
            "kind": "s3",
            "bucket": s3_lock_bucket,
            "prefix": "zwfw",
            "endpoint_url": moto_endpoint,
            "region": "us-east-1",
            "object_lock_mode": "GOVERNANCE",
        },
    )
    with simulator(small_world):
        assert run_nightly(load_settings(config))["status"] == "completed"

    with Session(create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")) as s:
        verified = list(s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED)))
    periods = {r.retention_period for r in verified}
    assert {"Y", "D10", "D30"} <= periods
    checked = 0
    for rec in verified:
        listing = s3_admin.list_objects_v2(Bucket=s3_lock_bucket, Prefix=f"zwfw/{rec.package_key}/")
        keys = [o["Key"] for o in listing.get("Contents", [])]
        # every document, 元数据.xml, the two manifests, 检测报告.xml and the completion marker
        assert len(keys) == rec.file_count + 5
        for key in keys:
            head = s3_admin.head_object(Bucket=s3_lock_bucket, Key=key)
            if rec.retention_period == "Y":
                assert head.get("ObjectLockLegalHoldStatus") == "ON", key
            else:
                due = date.fromisoformat(rec.disposition_date) + timedelta(days=1)
                assert head["ObjectLockMode"] == "GOVERNANCE", key
                assert head["ObjectLockRetainUntilDate"].astimezone(UTC) == datetime(
                    due.year, due.month, due.day, tzinfo=UTC
                ), key
            checked += 1
    assert checked > 50


def test_a_matter_changed_after_archiving_is_archived_again_beside_the_first(small_world: Path) -> None:
    with simulator(small_world) as sim:
        run_nightly(load_settings(small_world / "guidang.yaml"))
        with Session(create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")) as s:
            first = s.scalars(
                select(MatterRecord)
                .where(MatterRecord.source == "unified", MatterRecord.state == MatterState.VERIFIED)
                .order_by(MatterRecord.project_id)
            ).first()
        assert first is not None
        v1_dir = small_world / "archive" / first.package_key
        v1_files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in v1_dir.rglob("*") if p.is_file()}

        supplement = make_pdf(["supplementary material", first.project_id])
        sim.add_document(first.project_id, "结果", "补正材料.pdf", supplement, title="补正材料")
        second = run_nightly(load_settings(small_world / "guidang.yaml"))
    assert second["totals"]["archived"] == 1

    with Session(create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")) as s:
        versions = list(
            s.scalars(
                select(MatterRecord)
                .where(MatterRecord.source == "unified", MatterRecord.project_id == first.project_id)
                .order_by(MatterRecord.version)
            )
        )
    assert [(v.version, v.state) for v in versions] == [(1, "verified"), (2, "verified")]
    assert versions[0].archival_code == first.archival_code != versions[1].archival_code
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in v1_dir.rglob("*") if p.is_file()} == v1_files
    v2_doc = small_world / "archive" / versions[1].package_key / "结果材料" / "补正材料.pdf"
    assert v2_doc.read_bytes() == supplement


def test_a_store_that_keeps_failing_leaves_matters_pending_for_the_next_night(
    small_world: Path, clean_outcome: Any, s3_bucket: str, s3_fault_proxy: Any
) -> None:
    good, _defects = clean_outcome
    config = rewrite_config(
        small_world,
        repository={"kind": "s3", "bucket": s3_bucket, "endpoint_url": s3_fault_proxy.url, "region": "us-east-1"},
    )
    s3_fault_proxy.plan("PUT", ["503"] * 10)  # the first matter's PUT fails through all of the store's retries
    with simulator(small_world):
        first = run_nightly(load_settings(config), now=datetime(2026, 11, 26, 2, tzinfo=UTC))
        # a package the store did not take after its retries fails its source (exit 1), never quarantined
        assert first["status"] == "failed"
        assert all("repository" in s["error"] for s in first["sources"].values() if s.get("error"))
        assert first["totals"]["pending"] >= 1 and first["totals"]["quarantined"] == len(_defects)
        with Session(create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")) as s:
            numbered = list(s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.NUMBERED)))
            marks = {w.source: w.value for w in s.scalars(select(Watermark))}
        assert len(numbered) == first["totals"]["pending"]  # they keep their 件号: the sequence stays gap-free
        held = {r.source for r in numbered}
        for source in held:  # the watermark is not moved past a matter that is not done
            assert marks[source] < min(r.source_updated_at for r in numbered if r.source == source)

        second = run_nightly(load_settings(config), now=datetime(2026, 11, 27, 2, tzinfo=UTC))
    assert second["status"] == "completed" and second["totals"]["pending"] == 0
    verified, _ = outcome(small_world)
    assert verified == good


def test_quarantine_retry_archives_what_an_archivist_fixed(small_world: Path) -> None:
    import json

    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    config = str(small_world / "guidang.yaml")
    with simulator(small_world) as sim:
        run_nightly(load_settings(config))
        listed = json.loads(runner.invoke(app, ["quarantine", "list", "-c", config, "--json"]).stdout)
        no_rule = [e for e in listed if e["codes"] == ["Q-RETENTION-NO-RULE"]]
        assert no_rule and all("330106-QT-0001" in f["message"] for e in no_rule for f in e["findings"])

        # the archivist adds the missing rule as a new table version, then retries
        from openpyxl import load_workbook

        wb = load_workbook(small_world / "retention.xlsx")
        ws = wb.active
        ws.append(
            [
                "330106-QT-0001",
                "职业技能等级认定",
                "10 其他行政权力",
                "西湖区人力资源和社会保障局",
                "全部",
                "归档",
                "10年",
                "WS",
                "RS",
                "2020-01-01",
                None,
                "补充规则",
            ]
        )
        wb.save(small_world / "retention-v2.xlsx")
        imported = runner.invoke(
            app,
            ["retention", "import", str(small_world / "retention-v2.xlsx"), "-c", config, "--effective", "2000-01-01"],
        )
        assert imported.exit_code == 0, imported.stdout

        ids = [str(e["id"]) for e in no_rule]
        retried = runner.invoke(app, ["quarantine", "retry", *ids, "-c", config, "--json"])
        assert retried.exit_code == 0, retried.stdout
        totals = json.loads(retried.stdout)["totals"]
        # the rule was the only fault of some; others now show their next fault (a missing or wrong file)
        assert totals["archived"] >= 1 and totals["archived"] + totals["quarantined"] == len(ids), retried.stdout

        after = {
            e["project_id"]: e
            for e in json.loads(runner.invoke(app, ["quarantine", "list", "-c", config, "--json"]).stdout)
        }
        verified, _ = outcome(small_world)
        for e in no_rule:
            if ("unified", e["project_id"]) in verified:
                assert e["project_id"] not in after  # resolved
            else:
                assert "Q-RETENTION-NO-RULE" not in after[e["project_id"]]["codes"]
                assert after[e["project_id"]]["attempts"] == 2
        # 归档回传 reached the unified system for every archived unified matter
        acked = {a["PROJID"] for a in sim.acks}
        assert {pid for src, pid in verified if src == "unified"} <= acked


def test_archived_matters_are_acknowledged_back_to_a_sql_source(small_world: Path) -> None:
    with simulator(small_world):
        run_nightly(load_settings(small_world / "guidang.yaml"))
    verified, _ = outcome(small_world)
    engine = create_engine(f"sqlite:///{small_world / 'sources' / 'tzxm.sqlite'}")
    with engine.connect() as c:
        from sqlalchemy import text

        acked = {r[0] for r in c.execute(text("SELECT SPBH FROM XM_APPROVAL WHERE GDZT = '1' AND GDDH IS NOT NULL"))}
    engine.dispose()
    assert acked == {pid for src, pid in verified if src == "tzxm"} and acked
