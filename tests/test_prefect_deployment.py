"""What operations do (README "Deployment"), done for real: `prefect server start` on a free port
with its own PREFECT_HOME, `guidang deploy`, `prefect worker start --pool guidang` started from
another folder with nothing but the server's address, the nightly deployment run with its default
parameters until Completed; then the archive, the night's logs and events on the server, the
alerts (a webhook block pointing at a local HTTP receiver), `guidang serve`, and a failed night.

Not skipped anywhere (CI included): it needs only this machine. Every process it starts is
stopped at the end, also when it fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, func, select

from guidang_demo.unified_simulator import UnifiedSimulator
from ledger.models import MatterRecord, MatterState
from schemas.layout import COMPLETION_MARKER
from schemas.model import mask_text
from tests.prefect_server_support import (
    Api,
    Processes,
    clean_env,
    free_port,
    prefect_server,
    seeded_home,
    wait_for,
    webhook_receiver,
)

ROOT = Path(__file__).resolve().parent.parent
BLOCK = "guidang-test-alerts"
THRESHOLD = 3  # the small world quarantines about ten matters in its first night


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _prepare_world(world: Path, unified_url: str) -> Path:
    """The world's guidang.yaml as an operator writes it: the unified system's address in the file
    (no variable on the worker), and the alerts' notification block."""
    config = world / "guidang.yaml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("${GUIDANG_UNIFIED_URL:-http://127.0.0.1:8765}", unified_url)
    assert unified_url in text
    text += f"\nalerts:\n  notification_block: custom-webhook/{BLOCK}\n  quarantined_more_than: {THRESHOLD}\n"
    config.write_text(text, encoding="utf-8")
    return config


def _night_runs(api: Api, deployment_id: str) -> list[dict]:
    return api.flow_runs(deployment_id={"any_": [deployment_id]}, state={"type": {"any_": ["COMPLETED", "FAILED"]}})


@pytest.mark.prefect
@pytest.mark.timeout(900)
def test_deploy_worker_night_logs_events_alerts_and_serve(small_world: Path, tmp_path: Path, prefect_db: Path) -> None:
    processes = Processes(tmp_path)
    home = seeded_home(tmp_path / "prefect-home", prefect_db)
    outside = tmp_path / "elsewhere"  # the worker's folder: not the project, not the world
    outside.mkdir()
    sim = UnifiedSimulator(small_world / "sources" / "unified")
    try:
        config = _prepare_world(small_world, sim.start())
        with prefect_server(processes, home, free_port()) as api, webhook_receiver() as (hook_url, received):
            env = clean_env(PREFECT_API_URL=api.url, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
            deploy = [sys.executable, "-m", "flows.cli", "deploy", "--config", str(config), "--json"]
            no_server = _run(deploy, clean_env(PREFECT_HOME=str(home)), ROOT)
            assert no_server.returncode == 2 and "PREFECT_API_URL" in no_server.stderr, no_server.stderr
            no_block = _run(deploy, env, ROOT)
            assert no_block.returncode == 2 and f"no custom-webhook block named '{BLOCK}'" in no_block.stderr
            block = _run([sys.executable, "-c",
                          "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B; "
                          f"B(name='guidang', url={hook_url!r}, json_data={{'subject': '{{{{subject}}}}', "
                          f"'text': '{{{{body}}}}'}}).save({BLOCK!r})"], env, outside)
            assert block.returncode == 0, block.stderr

            # guidang deploy: pool created, four deployments, four automations
            dep = _run(deploy, env, ROOT)
            assert dep.returncode == 0, dep.stdout + dep.stderr
            made = json.loads(dep.stdout)
            assert made["pool_created"] is True
            assert made["deployments"] == ["nightly_transfer/nightly", "fixity_check/fixity",
                                           "quarantine_retry/quarantine-retry", "backfill_transfer/backfill"]
            assert len(made["automations"]) == 4
            nightly = api.deployment("nightly_transfer/nightly")
            assert nightly is not None and nightly["work_pool_name"] == "guidang"
            assert nightly["parameters"] == {"config": str(config.resolve())}
            assert [s["schedule"] for s in nightly["schedules"]] == [
                {"cron": "0 2 * * *", "timezone": "Asia/Shanghai", "day_or": True}]
            assert nightly["global_concurrency_limit"]["limit"] == 1

            # the worker, as the README starts it (its polling shortened to keep the test short)
            worker_env = env | {"PREFECT_WORKER_QUERY_SECONDS": "2"}
            processes.start("worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", "guidang"],
                            env=worker_env, cwd=outside)
            night = _run([sys.executable, "-m", "prefect", "deployment", "run", "nightly_transfer/nightly",
                          "--watch", "--watch-timeout", "400"], env, outside, timeout=450)
            assert night.returncode == 0, night.stdout[-3000:] + night.stderr[-3000:] + processes.log("worker")[-5000:]
            assert "Completed" in night.stdout

            runs = _night_runs(api, nightly["id"])
            assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED"
            run = runs[0]
            started = datetime.fromisoformat(run["expected_start_time"]).astimezone(ZoneInfo("Asia/Shanghai"))
            assert run["name"] == f"nightly-{started.date().isoformat()}"
            subflows = api.flow_runs(parent_flow_run_id={"any_": [run["id"]]}) or api.flow_runs(
                name={"like_": "source-"})
            assert sorted(r["name"] for r in subflows) == ["source-sjjc", "source-tzxm", "source-unified"]

            tasks = {t["name"] for t in api.post("/task_runs/filter", {"limit": 200})}
            assert {"collect-unified", "stage-tzxm[1-8 of 8]"} <= tasks, tasks
            assert any(t.startswith("transfer-unified[1-") for t in tasks), tasks

            # the archive: what the night's event says it archived is in the ledger and on disk
            completed = wait_for(lambda: api.events("guidang.night.completed"), "guidang.night.completed")
            totals = completed[0]["payload"]["totals"]
            held = totals["quarantined"]
            assert totals["archived"] > 20 and held > THRESHOLD
            engine = create_engine(f"sqlite:///{small_world / 'ledger.sqlite'}")
            with engine.connect() as c:
                verified = c.execute(select(func.count()).select_from(MatterRecord)
                                     .where(MatterRecord.state == MatterState.VERIFIED)).scalar_one()
            engine.dispose()
            assert verified == totals["archived"]
            markers = list((small_world / "archive").rglob(COMPLETION_MARKER))
            assert len(markers) == totals["archived"]
            audit = _run([sys.executable, "-m", "flows.cli", "audit", "verify", "--config", str(config)], env, ROOT)
            assert audit.returncode == 0, audit.stdout + audit.stderr

            # the run's logs on the server: guidang's quarantine warnings, masked
            logs = api.logs([run["id"], *(r["id"] for r in subflows)])
            warnings = [entry["message"] for entry in logs if entry["name"] == "guidang" and entry["level"] == 30]
            assert any(m.startswith("quarantined tzxm/TZ202611150008: [Q-PDF-BROKEN]") for m in warnings), warnings
            assert any(f"{held} matter(s) quarantined" in entry["message"] for entry in logs
                       if entry["flow_run_id"] == run["id"])
            assert all(mask_text(entry["message"]) == entry["message"] for entry in logs if entry["name"] == "guidang")

            # events: one per quarantined matter with its reason codes; artifacts of the night
            quarantined = wait_for(lambda: len(api.events("guidang.matter.quarantined")) >= held and
                                   api.events("guidang.matter.quarantined"), "the quarantine events")
            assert len(quarantined) == held
            assert all(e["payload"]["reasons"] and all(c.startswith("Q-") for c in e["payload"]["reasons"])
                       for e in quarantined)
            artifacts = {a["key"]: a for a in api.post("/artifacts/filter", {"limit": 50}) if a.get("key")}
            assert {"night-progress", "transfer-summary", "transfer-by-agency", "transfer-report"} <= set(artifacts)
            assert artifacts["night-progress"]["data"] == 100.0
            report = artifacts["transfer-report"]["data"]
            for part in ("## Window", "bytes:", "## DA/T 93 transfer batches", "chain head:"):
                assert part in report, report
            agencies = json.loads(artifacts["transfer-by-agency"]["data"])
            assert sum(r["archived"] for r in agencies) == totals["archived"]
            assert sum(r["quarantined"] for r in agencies) == held

            # the threshold automation: more than THRESHOLD quarantined in one night
            wait_for(lambda: any("too many quarantined" in m.get("subject", "") for m in received),
                     "the too-many-quarantined notification", timeout=90)

            # guidang serve: its own names, its run completes, the deployed nightly left as it was
            # (its runner's polling shortened as the worker's is: it looks for its runs every 10 s by default)
            serve = processes.start("serve", [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)],
                                    env=env | {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}, cwd=ROOT)
            wait_for(lambda: api.deployment("nightly_transfer/served-nightly"), "the served deployments", timeout=120)
            served = _run([sys.executable, "-m", "prefect", "deployment", "run", "nightly_transfer/served-nightly",
                           "--watch", "--watch-timeout", "300"], env, outside, timeout=350)
            assert served.returncode == 0, served.stdout[-3000:] + processes.log("serve")[-5000:]
            assert "Completed" in served.stdout
            processes.stop(serve)
            after = api.deployment("nightly_transfer/nightly")
            assert after is not None and after["work_pool_name"] == "guidang" and not after["paused"]
            assert after["global_concurrency_limit"]["limit"] == 1

            # the weekly fixity check and the quarantine retry, on demand through the worker
            for deployment in ("fixity_check/fixity", "quarantine_retry/quarantine-retry"):
                done = _run([sys.executable, "-m", "prefect", "deployment", "run", deployment, "--watch",
                             "--watch-timeout", "300"], env, outside, timeout=350)
                assert done.returncode == 0 and "Completed" in done.stdout, done.stdout[-3000:]
            retry = api.flow_runs(name={"like_": "quarantine-retry-"})
            assert len(retry) == 1 and retry[0]["state_type"] == "COMPLETED"
            retried = [e["message"] for e in api.logs([retry[0]["id"]]) if e["name"] == "guidang"]
            assert any(m.startswith("quarantined tzxm/TZ202611150008: [Q-PDF-BROKEN]") for m in retried), retried

            # a failed night (the archive volume is not mounted): Failed, its event, the notification
            shutil.move(small_world / "archive", small_world / "archive.unmounted")
            failed = _run([sys.executable, "-m", "prefect", "deployment", "run", "nightly_transfer/nightly",
                           "--watch", "--watch-timeout", "300"], env, outside, timeout=350)
            assert failed.returncode != 0 and "Failed" in failed.stdout, failed.stdout[-3000:]
            events = wait_for(lambda: api.events("guidang.night.failed"), "guidang.night.failed")
            assert "REPO-ROOT-MISSING" in events[0]["payload"]["error"]
            note = wait_for(lambda: [m for m in received if "night failed" in m.get("subject", "")],
                            "the night-failed notification", timeout=90)
            assert "REPO-ROOT-MISSING" in note[0]["text"] and "nightly-" in note[0]["text"]
        assert "telemetry" not in processes.log("server").lower()
    finally:
        processes.stop_all()
        sim.stop()
