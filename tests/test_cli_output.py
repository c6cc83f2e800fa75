"""What the command line shows and writes.

Personal data masked inside Chinese text wherever text is shown (quarantine list, log lines, error
messages); no CSV/XLSX written from data carries a live formula; exit codes, `--version`, a closed
pipe and a terminal free of Prefect's per-task lines. Real files, a real SQLite ledger, the real
command line (typer's CliRunner, and subprocesses where the process itself is what is checked).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from flows.cli import app
from ledger import holds
from ledger.models import MatterRecord, MatterState
from ledger.store import Ledger
from retention import write_table_xlsx
from schemas.findings import Finding
from schemas.model import mask_text

ROOT = Path(__file__).resolve().parents[1]
ID18 = "330106199001011234"
ID15 = "330106900101123"
CREDIT = "91330106MA2B3C4D5E"
MOBILE = "13812345678"
HOSTILE_NAME = f"赵涛身份证{ID18}.pdf"
FORMULA = '=HYPERLINK("http://x","y")'

UNIFIED = "sources:\n  - name: unified\n    kind: unified\n    base_url: http://127.0.0.1:9\n    retries: 0\n"

runner = CliRunner(env={"GUIDANG_CONFIG": None})


def _config(tmp_path: Path, sources: str | None = None) -> Path:
    path = tmp_path / "guidang.yaml"
    path.write_text(
        "fonds:\n  - code: Z109\n    name: 测试全宗\n"
        "ledger_url: sqlite:///ledger.sqlite\n"
        "repository:\n  kind: fs\n  path: archive\n"
        + (sources or UNIFIED),
        encoding="utf-8",
    )
    return path


def _quarantine(config: Path, entries: list[tuple[str, str]]) -> None:
    """Open quarantine entries (project id, document file name), as a night records them."""
    with Ledger(f"sqlite:///{config.parent / 'ledger.sqlite'}") as ledger, ledger.transaction() as s:
        for project_id, name in entries:
            where = f"unified/{project_id} 申报材料/{name}"
            hold = holds.Hold("unified", project_id, None, None, {"matter": {"documents": [{"file_name": name}]}})
            holds.quarantine(s, hold, [Finding("Q-PDF-BROKEN", where, f"{where}: does not open")], run_id=None)


def _probe(args: list[str], cwd: Path) -> dict[str, Any]:
    """Run the command line in a fresh interpreter; report its exit code, whether Prefect was
    imported, its stderr and how long it took."""
    code = (
        "import json, sys\nfrom flows.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(json.dumps({'code': code, 'prefect': 'prefect' in sys.modules}))\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "stderr": done.stderr, "seconds": time.monotonic() - started}


# -- masking inside Chinese text


def test_identity_numbers_credit_codes_and_phones_are_masked_next_to_chinese_text() -> None:
    for number, text in [
        (ID18, HOSTILE_NAME),
        (ID15, f"旧身份证{ID15}号"),
        (CREDIT, f"统一社会信用代码{CREDIT}的公司"),
        (MOBILE, f"联系电话{MOBILE}。"),
    ]:
        shown = mask_text(text)
        assert number not in shown, shown
        assert number[:3] in shown and number[-4:] in shown and "*" in shown  # an operator can still tell them apart
        assert shown.replace("*", "") != text  # and the Chinese around it is kept
        assert shown.startswith(text[:4])
    assert mask_text("+86 138-1234-5678") != "+86 138-1234-5678"
    # what must stay readable: 20-digit 办件编号, chain heads, 档号
    for keep in ("33010620261123000010", "1fb49d07f0af6823466b46326ede72c4536f8a3ad6818395fb37940f477d49d0",
                 "Z109-WS·2026·D10·SJ-0001"):
        assert mask_text(keep) == keep


def test_quarantine_list_masks_a_file_name_carrying_an_identity_number(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _quarantine(config, [("P1", HOSTILE_NAME)])
    listed = runner.invoke(app, ["quarantine", "list", "-c", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "赵涛身份证330106" in listed.output and ID18 not in listed.output
    as_json = runner.invoke(app, ["quarantine", "list", "-c", str(config), "--json"])
    assert ID18 not in as_json.output and json.loads(as_json.output)[0]["project_id"] == "P1"
    shown = json.loads(runner.invoke(app, ["quarantine", "show", "1", "-c", str(config), "--json"]).output)
    assert ID18 not in json.dumps(shown["findings"], ensure_ascii=False)  # the findings as `list` shows them
    assert shown["record"]["matter"]["documents"][0]["file_name"] == HOSTILE_NAME  # the record the operator asked for


def test_log_lines_are_masked_on_the_terminal_and_for_every_handler(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from flows.cli.common import setup_logging

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        setup_logging()
        logging.getLogger("guidang").warning("quarantined %s", HOSTILE_NAME)
        logging.getLogger("connectors.sources.sql").warning("source said: %s / %s", CREDIT, MOBILE)
        try:
            raise ValueError(f"cannot open {HOSTILE_NAME}")
        except ValueError:
            logging.getLogger("guidang").exception("staging failed")
    finally:
        for h in [h for h in root.handlers if h not in before]:  # leave logging as the test found it
            root.removeHandler(h)
    terminal = capsys.readouterr().err
    assert "quarantined 赵涛身份证330106" in terminal and "source said" in terminal and "cannot open" in terminal
    for number in (ID18, CREDIT, MOBILE):
        assert number not in terminal
    guidang_records = [r for r in caplog.records if r.name == "guidang"]
    assert guidang_records and all(ID18 not in r.getMessage() and ID18 not in (r.exc_text or "")
                                   for r in guidang_records)  # masked before any handler sees it


def test_an_error_message_the_command_line_prints_is_masked(tmp_path: Path) -> None:
    config = _config(tmp_path)
    r = runner.invoke(app, ["run", "-c", str(config), "--orchestrator", "local", "--source", f"赵涛{ID18}"])
    assert r.exit_code == 2
    assert "no source named" in r.output and ID18 not in r.output


# -- no live formula from data


def _due_record(title: str) -> MatterRecord:
    done = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    return MatterRecord(
        source="unified", project_id="P1", content_hash="0" * 64, state=MatterState.VERIFIED,
        service_code="330106-XK-0001", service_name="食品经营许可", matter_type="01", agency="西湖区市场监督管理局",
        title=title, completed_at=done, source_updated_at=done, fonds="Z109", year=2026, retention_period="D10",
        archival_code="Z109-WS·2026·D10·SJ-0001", retention_version="v1", retention_row=2,
        disposition_date="2036-12-31", record={}, appraisal={},
    )


def _xlsx_cells(path: Path, text: str) -> list[Any]:
    return [c for row in load_workbook(path).worksheets[0].iter_rows() for c in row if c.value == text]


def _csv_cells(path: Path, text: str) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [cell for row in csv.reader(fh) for cell in row if text in cell]


def test_due_and_coverage_lists_never_write_a_live_formula(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as ledger, ledger.transaction() as s:
        s.add(_due_record(FORMULA))
    table = tmp_path / "table.xlsx"
    write_table_xlsx(table, [{"事项类型": "01", "材料类别": "全部", "归档范围": "归档", "保管期限": "10年"}])
    catalogue = tmp_path / "目录.csv"
    with catalogue.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([("事项编码", "事项名称", "事项类型", "实施机构"),
                                  ("330106-CF-0001", FORMULA, "02", "@机构")])
    for suffix in (".xlsx", ".csv"):
        due = tmp_path / f"due{suffix}"
        uncovered = tmp_path / f"uncovered{suffix}"
        r = runner.invoke(app, ["retention", "due", "--before", "2037-01-01", "--out", str(due), "-c", str(config)])
        assert r.exit_code == 0, r.output
        r = runner.invoke(app, ["retention", "coverage", "--catalogue", str(catalogue), "--table", str(table),
                                "--out", str(uncovered)])
        assert r.exit_code == 1, r.output  # one entry uncovered, written to the list
        for out, text in ((due, FORMULA), (uncovered, FORMULA), (uncovered, "@机构")):
            if suffix == ".xlsx":
                cells = _xlsx_cells(out, text)
                assert cells and all(c.data_type == "s" for c in cells), out  # a string, never a formula ("f")
            else:
                assert _csv_cells(out, text) == ["'" + text], out  # shown as text, not evaluated


# -- exit codes and the terminal


def test_an_unknown_source_exits_2_at_once_without_starting_prefect(tmp_path: Path) -> None:
    config = _config(tmp_path)
    probe = _probe(["run", "-c", str(config), "--source", "nope"], tmp_path)
    assert probe["code"] == 2 and not probe["prefect"], probe
    assert "no source named 'nope'" in probe["stderr"] and "Traceback" not in probe["stderr"]
    assert probe["seconds"] < 5
    assert not (tmp_path / "ledger.sqlite").exists()  # no work was started


def test_a_bad_sql_source_configuration_exits_2_before_any_work(tmp_path: Path) -> None:
    config = _config(tmp_path, (
        "sources:\n  - name: selfbuilt\n    kind: sql\n    url: sqlite:///none.sqlite\n"
        "    matters_query: SELECT * FROM m WHERE t > :since AND t <= :until\n"
        "    columns: {project_id: id, completed_at: done}\n"  # no updated_at, no service_code, ...
        "    documents_query: SELECT * FROM d WHERE pid = :project_id\n"
        "    document_columns: {group: g, file_name: f}\n"
        "    content: {kind: blob, column: data}\n"
    ))
    for orchestrator in ("local", "prefect"):
        probe = _probe(["run", "-c", str(config), "--orchestrator", orchestrator], tmp_path)
        assert probe["code"] == 2 and not probe["prefect"], probe
        assert "columns.updated_at" in probe["stderr"] and "Traceback" not in probe["stderr"]
    assert not (tmp_path / "ledger.sqlite").exists()


def test_version_prints_the_installed_version() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"guidang {version('guidang')}"


def test_a_closed_pipe_ends_quarantine_list_quietly(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _quarantine(config, [(f"P{n}", f"文件{n}.pdf") for n in range(1500)])  # far more than a pipe buffers
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "quarantine", "list", "-c", str(config)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"#")  # `| head -1`
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr


def test_demo_under_prefect_shows_the_summary_and_not_prefects_task_lines(tmp_path: Path) -> None:
    """A tiny demo world under the real Prefect orchestrator (a temporary server) in its own process."""
    from guidang_demo.world import build_world

    world = tmp_path / "world"
    build_world(world, counts={"unified": 10, "tzxm": 4, "sjjc": 5})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "demo", str(world), "--orchestrator", "prefect"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env={**env, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect")})
    shown = done.stdout + done.stderr
    assert "guidang nightly transfer" in done.stdout and "TOTAL" in done.stdout, shown
    assert "Finished in state" not in shown and "Beginning subflow run" not in shown, shown


def test_a_dask_night_from_the_command_line_shows_the_summary_and_not_prefects_task_lines(tmp_path: Path) -> None:
    """The same on a LocalCluster of the night's own: its workers are forked from the night's
    forkserver with Prefect already imported, so Prefect's console setting must reach them from
    the command, as it reaches spawned workers; their task runs go to the night's temporary server
    (a worker that started one of its own would leave it running, holding this command's output
    open: this call would not return); and every matter is accounted for."""
    from guidang_demo.world import build_world
    from tests.test_scale_out import configure

    world = tmp_path / "world"
    build_world(world, counts={"unified": 10, "tzxm": 4, "sjjc": 5})
    configure(world, chunk_size=4, orchestration={"task_runner": "dask", "dask_workers": 2})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "demo", str(world), "--orchestrator", "prefect",
                           "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**env, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect")})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout)
    totals = summary["totals"]
    assert summary["status"] == "completed" and totals["archived"] > 0, totals
    assert totals["archived"] + totals["quarantined"] + totals["not_in_scope"] + totals["waiting"] \
        == totals["collected"], totals  # the demo's defects quarantined, every matter accounted for
    assert "Finished in state" not in done.stderr and "Task run" not in done.stderr, done.stderr[-3000:]
