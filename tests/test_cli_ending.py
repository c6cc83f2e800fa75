"""The `guidang` process ends without the interpreter's teardown (flows/cli/ending.py): what the
teardown would have done that anyone can see must still happen, with the command's exit code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    header = textwrap.dedent(f"""\
        import atexit, logging, sys, tempfile, threading, time
        from pathlib import Path
        from flows.cli.ending import run_and_exit
        out = Path({str(tmp_path)!r})

        def main():
        """)
    script = header + textwrap.indent(textwrap.dedent(body), "    ") + "\nrun_and_exit(main)\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_exit_code_output_threads_exit_functions_and_log_files_survive_the_quick_exit(tmp_path: Path) -> None:
    done = _run(tmp_path, """
        atexit.register(lambda: (out / "atexit").write_text("ran"))
        def late():
            time.sleep(0.5)
            (out / "thread").write_text("joined")
        threading.Thread(target=late).start()
        handler = logging.FileHandler(out / "log.txt", encoding="utf-8")
        logging.getLogger("t").addHandler(handler)
        logging.getLogger("t").warning("last line of the log")
        kept = tempfile.TemporaryDirectory(dir=out)
        (out / "tempdir").write_text(kept.name)
        sys.stdout.write("x" * 300_000)
        sys.stderr.write("said on stderr")
        raise SystemExit(3)
    """)
    assert done.returncode == 3
    assert done.stdout == "x" * 300_000  # buffered output flushed in full
    assert done.stderr == "said on stderr"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "joined"  # a non-daemon thread finished first
    assert (tmp_path / "log.txt").read_text(encoding="utf-8") == "last line of the log\n"
    assert not Path((tmp_path / "tempdir").read_text()).exists()  # weakref.finalize cleanups ran


def test_exit_codes_read_as_systemexit_reads_them(tmp_path: Path) -> None:
    assert _run(tmp_path, "return None").returncode == 0
    assert _run(tmp_path, "raise SystemExit(None)").returncode == 0
    message = _run(tmp_path, "raise SystemExit('guidang: config file not found')")
    assert message.returncode == 1 and message.stderr.strip() == "guidang: config file not found"


def test_an_unhandled_exception_ends_the_usual_way_with_its_traceback(tmp_path: Path) -> None:
    done = _run(tmp_path, "raise RuntimeError('not handled')")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: not handled" in done.stderr


def test_the_command_keeps_its_exit_codes_and_output(tmp_path: Path) -> None:
    missing = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--config", str(tmp_path / "none.yaml")],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert missing.returncode == 2 and "config file not found" in missing.stderr
    version = subprocess.run([sys.executable, "-m", "flows.cli", "--version"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("guidang ")
