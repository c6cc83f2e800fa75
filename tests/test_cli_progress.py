"""Progress bars: the real `guidang` in its own process, its stderr a
pseudo-terminal (Python's pty) or a pipe, its stdout always a pipe.

On a terminal each long command draws a bar whose last frame reads "n/n" with n what the command
then reports; with --json, or with stderr piped, nothing of a bar is written, and stdout is what
it is without a bar (byte for byte where the command's output is deterministic)."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.prefect_server_support import seeded_home
from tests.world_support import simulator

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = "━"  # rich's bar glyph
TINY = {"unified": 10, "tzxm": 4, "sjjc": 5}


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str  # what reached the terminal (or the pipe), escape sequences and all

    @property
    def screen(self) -> str:
        """stderr as text: escapes dropped, each redraw (\\r) on its own line."""
        return ANSI.sub("", self.stderr).replace("\r", "\n")


def guidang(args: list[str], cwd: Path, *, tty: bool, env: dict[str, str | None] | None = None) -> Done:
    """`python -m flows.cli ARGS` with stderr on a pseudo-terminal (tty=True) or a pipe; `env`
    adds variables to this process's environment, or removes those it maps to None."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM", "CI")}
    merged = {**base, "TERM": "xterm-256color", "COLUMNS": "160", "PYTHONPATH": str(ROOT), **(env or {})}
    full = {k: v for k, v in merged.items() if v is not None}
    cmd = [sys.executable, "-m", "flows.cli", *args]
    if not tty:
        p = subprocess.run(cmd, cwd=cwd, env=full, stdin=subprocess.DEVNULL, capture_output=True, timeout=240)
        return Done(p.returncode, p.stdout.decode(), p.stderr.decode())
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, cwd=cwd, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(timeout=240)
    reader.join(10)
    os.close(master)
    return Done(proc.returncode, out.decode(), b"".join(chunks).decode(errors="replace"))


def final_count(screen: str, label: str) -> str | None:
    """The last "done/total" drawn on the bar labelled `label`."""
    found = re.findall(rf"{re.escape(label)}\s*{BAR}[{BAR}╺╸ ]*\s(\d+/\d+)", screen)
    return found[-1] if found else None


def no_bar(done: Done) -> None:
    assert BAR not in done.stderr and "\x1b[?25l" not in done.stderr, done.stderr[-2000:]  # no bar, no hidden cursor
    assert BAR not in done.stdout and "\x1b" not in done.stdout


def normalised(text: str) -> str:
    """A night's text summary without what differs from one night to the next (run id, hashes, event numbers)."""
    return re.sub(r"\b[0-9a-f]{16,64}\b", "<id>", re.sub(r"ledger: \d+ events", "ledger: N events", text))


@pytest.fixture(scope="module")
def tiny_pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from guidang_demo.world import build_world

    world = tmp_path_factory.mktemp("tiny") / "world"
    build_world(world, counts=TINY)
    return world


def copy_of(pristine: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(pristine, target)
    return target


def night(world: Path, *extra: str, tty: bool, orchestrator: str = "local",
          env: dict[str, str | None] | None = None) -> Done:
    with simulator(world):
        return guidang(["run", "-c", str(world / "guidang.yaml"), "--orchestrator", orchestrator, *extra],
                       world, tty=tty, env=env)


def test_run_draws_a_bar_per_source_on_a_terminal_and_nothing_when_piped(small_pristine: Path, tmp_path: Path) -> None:
    on_tty = night(copy_of(small_pristine, tmp_path, "a"), tty=True)
    piped = night(copy_of(small_pristine, tmp_path, "b"), tty=False)
    assert on_tty.code == piped.code == 0, on_tty.stderr[-2000:] + piped.stderr
    screen = on_tty.screen
    for source in ("unified", "tzxm", "sjjc"):  # the summary's "collected" column is each bar's total
        collected = int(re.search(rf"^{source}\s+(\d+)", on_tty.stdout, re.M).group(1))  # type: ignore[union-attr]
        assert final_count(screen, source) == f"{collected}/{collected}", screen[-3000:]
        assert re.search(rf"{source}\s*{BAR}.*暂存 staged \d+ · 移交 transferred \d+ · 收集 collected {collected}",
                         screen), screen[-3000:]
    no_bar(piped)
    assert normalised(on_tty.stdout) == normalised(piped.stdout)  # the bar changed nothing on stdout
    assert "\x1b" not in on_tty.stdout

    # the night's quarantine warnings are whole, masked lines above the bar, not torn by a redraw
    warnings = [line for line in screen.splitlines() if "WARNING guidang: quarantined" in line]
    assert warnings, screen[-3000:]
    for line in warnings:
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING guidang: quarantined \S+/\S+: ", line), line
        assert BAR not in line
    id_number = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")  # bounded as the masker bounds it
    assert not id_number.search(screen), "an ID number reached the terminal unmasked"


def test_run_with_json_draws_no_bar_even_on_a_terminal(small_pristine: Path, tmp_path: Path) -> None:
    done = night(copy_of(small_pristine, tmp_path, "a"), "--json", tty=True)
    assert done.code == 0, done.stderr[-2000:]
    no_bar(done)
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed" and summary["totals"]["collected"] == sum(
        s["collected"] for s in summary["sources"].values())


def test_dumb_terminal_and_no_color(small_pristine: Path, tmp_path: Path) -> None:
    """TERM=dumb: no bar at all; NO_COLOR: the bar without colours."""
    dumb = night(copy_of(small_pristine, tmp_path, "a"), tty=True, env={"TERM": "dumb"})
    assert dumb.code == 0
    no_bar(dumb)
    plain = night(copy_of(small_pristine, tmp_path, "b"), tty=True, env={"NO_COLOR": "1"})
    assert plain.code == 0 and final_count(plain.screen, "tzxm") is not None, plain.screen[-2000:]
    assert not re.search(r"\x1b\[[0-9;]*(3[0-8]|9[0-7])(;[0-9;]*)?m", plain.stderr), "colours despite NO_COLOR"


def test_run_under_prefect_draws_the_same_bars(tiny_pristine: Path, tmp_path: Path, prefect_db: Path) -> None:
    """The default orchestrator: the flow finds the CLI's listener in its own process."""
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PREFECT_")}
    clean["PREFECT_HOME"] = str(seeded_home(tmp_path / "prefect", prefect_db))  # its temporary server's database
    done = night(copy_of(tiny_pristine, tmp_path, "a"), tty=True, orchestrator="prefect", env=clean)
    assert done.code == 0, done.stderr[-3000:]
    assert "guidang nightly transfer" in done.stdout and "\x1b" not in done.stdout
    for source, n in TINY.items():
        assert final_count(done.screen, source) == f"{n}/{n}", done.screen[-3000:]


def test_fixity_bar_counts_the_objects_it_re_reads(small_pristine: Path, tmp_path: Path) -> None:
    world = copy_of(small_pristine, tmp_path, "a")
    assert night(world, tty=False).code == 0
    args = ["audit", "fixity", "-c", str(world / "guidang.yaml")]
    on_tty = guidang(args, world, tty=True)
    as_json = guidang([*args, "--json"], world, tty=True)
    piped = guidang(args, world, tty=False)
    assert on_tty.code == as_json.code == piped.code == 0, on_tty.stdout + on_tty.stderr[-2000:]
    # each check adds a checkpoint that the next one reads too: compare a run with its own report
    read = int(re.search(r"(\d+) object\(s\), \d+ bytes read", on_tty.stdout).group(1))  # type: ignore[union-attr]
    assert read > 0 and final_count(on_tty.screen, "复核 fixity: objects re-read") == f"{read}/{read}", \
        on_tty.screen[-2000:]
    assert json.loads(as_json.stdout)["objects_read"] == read + 1
    no_bar(as_json)
    no_bar(piped)
    numbers = re.compile(r"\d+")  # the same report, every count one checkpoint further on
    assert numbers.sub("N", on_tty.stdout) == numbers.sub("N", piped.stdout) and "\x1b" not in on_tty.stdout


def big_table(path: Path, rows: int) -> Path:
    """A retention table of `rows` rules (one per 事项编码), as CSV, the header first."""
    header = ",".join(["事项编码", "事项名称", "事项类型", "实施机构", "材料类别", "归档范围", "保管期限",
                       "门类代码", "机构问题代码", "生效日期", "失效日期", "依据"])
    lines = [header] + [
        f"330106-XK-{i:05d},许可事项{i},01 行政许可,西湖区市场监督管理局,全部,归档,30年,WS,SJ,2020-01-01,,《规范》"
        for i in range(1, rows + 1)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_retention_import_bar_counts_the_rows(small_pristine: Path, tmp_path: Path) -> None:
    table = big_table(tmp_path / "big.csv", 2500)
    runs = {}
    for name, tty, extra in (("tty", True, []), ("json", True, ["--json"]), ("piped", False, []),
                             ("piped-json", False, ["--json"])):
        world = copy_of(small_pristine, tmp_path, name)
        runs[name] = guidang(["retention", "import", str(table), "--effective", "2026-01-01",
                              "-c", str(world / "guidang.yaml"), *extra], world, tty=tty)
        assert runs[name].code == 0, runs[name].stdout + runs[name].stderr[-2000:]
    assert final_count(runs["tty"].screen, "导入 import: rows read and checked") == "2500/2500", \
        runs["tty"].screen[-2000:]
    assert "2500 rule(s)" in runs["tty"].stdout
    for name in ("json", "piped", "piped-json"):
        no_bar(runs[name])
    assert runs["tty"].stdout == runs["piped"].stdout  # byte for byte
    assert runs["json"].stdout == runs["piped-json"].stdout
    assert json.loads(runs["json"].stdout)["rules"] == 2500


def test_a_bar_after_a_crash_ends_full_with_the_resumed_matters(small_pristine: Path, tmp_path: Path) -> None:
    """A night killed after its first chunk was numbered leaves matters that the next night finishes
    beside its own window: they widen that source's bar, which still ends at n/n."""
    world = copy_of(small_pristine, tmp_path, "a")
    killed = night(world, tty=False, env={"GUIDANG_CRASH_AT": "numbered:1"})
    assert killed.code != 0
    again = night(world, tty=True)
    assert again.code == 0, again.stderr[-2000:]
    collected = int(re.search(r"^unified\s+(\d+)", again.stdout, re.M).group(1))  # type: ignore[union-attr]
    final = final_count(again.screen, "unified")
    assert final is not None, again.screen[-2000:]
    done, total = map(int, final.split("/"))
    assert done == total > collected, (final, collected)  # the crashed night's first chunk, finished too


def test_a_listener_that_fails_does_not_stop_the_count() -> None:
    """night/progress.py on its own: a callback that raises is logged and the counting goes on."""
    from night.progress import NightProgress, SourceProgress

    seen: list[SourceProgress] = []

    def flaky(p: SourceProgress) -> None:
        seen.append(p)
        if len(seen) == 1:
            raise RuntimeError("terminal gone")

    progress = NightProgress(flaky)
    progress.triaged("tzxm", collected=10, to_work=8)
    progress.staged("tzxm", 8, went_on=7)
    progress.transferred("tzxm", 7)
    progress.finished("tzxm")
    assert [(p.settled, p.total) for p in seen] == [(2, 10), (3, 10), (10, 10), (10, 10)]
    assert seen[-1].finished and seen[-1].staged == 8 and seen[-1].transferred == 7


def test_reconcile_bar_counts_the_sources_it_asked(small_pristine: Path, tmp_path: Path) -> None:
    world = copy_of(small_pristine, tmp_path, "r")
    assert night(world, tty=False).code == 0
    args = ["audit", "reconcile", "-c", str(world / "guidang.yaml"), "--from", "2026-10-01", "--to", "2026-12-31"]
    with simulator(world):
        on_tty = guidang(args, world, tty=True)
        as_json = guidang([*args, "--json"], world, tty=True)
        piped = guidang(args, world, tty=False)
    assert on_tty.code == as_json.code == piped.code == 0, on_tty.stdout + on_tty.stderr[-2000:]
    assert final_count(on_tty.screen, "对账 reconcile") == "3/3", on_tty.screen[-2000:]
    assert json.loads(as_json.stdout)["ok"] is True
    no_bar(as_json)
    no_bar(piped)
    assert on_tty.stdout == piped.stdout
