"""`guidang bench` runs end to end and reports what it promises: a functional test, never a timed one.

The command runs as a user runs it (a subprocess, which itself starts the simulator and the night
as processes); the figures are checked for presence and sense (every matter archived, non-zero
rates and RSS, the targets as booleans), not for speed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

KEYS = {
    "matters", "docs", "size", "bytes", "orchestrator", "matters_per_s", "mb_per_s", "night_seconds",
    "process_seconds", "peak_rss_mb", "prefect_share", "bagit_matters_per_s", "hash_limit_matters_per_s",
    "hash_limit_mb_per_s", "vs_bagit", "vs_hash_limit", "targets", "floor_seconds", "floor_matters_per_s",
    "floor_cores", "floor_cpu_seconds", "floor_vs_bagit",
}


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GUIDANG_UNIFIED_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "bench", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240,
    )


def test_bench_reports_every_figure_of_a_small_world(tmp_path: Path) -> None:
    world = tmp_path / "world"
    done = _bench("--matters", "3", "--docs", "2", "--size", "20000", "--json", "--dir", str(world), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)  # progress went to stderr: stdout is the one JSON object
    assert not KEYS - set(figures), KEYS - set(figures)
    assert (figures["matters"], figures["docs"], figures["size"], figures["orchestrator"]) == (3, 2, 20000, "local")
    assert figures["archived"] == 3 and figures["nights"]["local"]["archived"] == 3
    assert figures["bytes"] >= 6 * 15000
    for key in ("matters_per_s", "mb_per_s", "night_seconds", "bagit_matters_per_s", "hash_limit_matters_per_s",
                "hash_limit_mb_per_s", "peak_rss_mb", "vs_bagit", "vs_hash_limit"):
        assert figures[key] > 0, key
    assert figures["process_seconds"] > figures["night_seconds"]  # the run row's span excludes start-up
    assert figures["prefect_share"] == 0.0
    assert abs(figures["vs_bagit"] - figures["matters_per_s"] / figures["bagit_matters_per_s"]) < 0.01
    assert set(figures["targets"]) == {"vs_bagit_sm3", "vs_floor", "peak_rss", "prefect_slower", "dask_slower"}
    for name in ("vs_bagit_sm3", "vs_floor", "peak_rss"):
        assert isinstance(figures["targets"][name]["met"], bool), name
    assert figures["targets"]["prefect_slower"]["met"] is None  # a local-only bench does not measure it
    assert figures["targets"]["dask_slower"]["met"] is None
    # like for like: the whole process, start-up included, against bagit-sm3 and the floor, stated for 100 KB
    assert figures["process_matters_per_s"] < figures["matters_per_s"]
    assert abs(figures["process_vs_floor"] - figures["process_matters_per_s"] / figures["floor_matters_per_s"]) < 0.01
    assert figures["targets"]["vs_floor"]["target"].startswith(">= 0.25x")
    assert figures["targets"]["vs_bagit_sm3"]["applies"] is False  # 20 KB documents: not the stated world
    # the required-work floor: every step timed, and a lower bound that the real night never beats
    # (as the targets define it: one SM3+SHA-256 pass, a SHA-256 read-back, pypdf counting the pages)
    assert set(figures["floor_cpu_seconds"]) == {"sm3_sha256", "sha256_readback", "pypdf_pages"}
    assert all(cpu > 0 for cpu in figures["floor_cpu_seconds"].values()), figures["floor_cpu_seconds"]
    # guidang's own checks timed beside it, not in it: the floor with them is slower than the floor
    assert set(figures["checks_cpu_seconds"]) == {"pdf_inspection", "pronom"}
    assert all(cpu > 0 for cpu in figures["checks_cpu_seconds"].values()), figures["checks_cpu_seconds"]
    assert figures["floor_with_checks_matters_per_s"] < figures["floor_matters_per_s"]
    assert figures["floor_cores"] >= 1
    assert abs(figures["floor_seconds"] - sum(figures["floor_cpu_seconds"].values()) / figures["floor_cores"]) < 0.01
    assert 0 < figures["floor_seconds"] < figures["night_seconds"]
    assert figures["bagit_sm3_matters_per_s"] > 0 and len(figures["passes"]["bagit_sm3"]) == 3
    assert abs(figures["vs_bagit_sm3"] - figures["matters_per_s"] / figures["bagit_sm3_matters_per_s"]) < 0.01
    # the bound: the floor and the checks, a bare start-up, the archive's copy and the packages' files
    bound = figures["bound"]
    assert bound["start_seconds"] > 0 and bound["new_files_cpu_seconds"] > 0
    assert bound["write_cpu_seconds"] >= 0  # six documents of 20 KB: under the figure's millisecond at times
    assert bound["matters_per_s"] < figures["floor_with_checks_matters_per_s"]
    assert bound["vs_bagit_sm3"] < figures["floor_vs_bagit_sm3"]
    reach = figures["targets"]["vs_bagit_sm3"]
    assert reach["reachable"] == (bound["vs_bagit_sm3"] >= 0.5)
    assert reach["at_most"] == bound["vs_bagit_sm3"]
    # what a new file cost on this disk before and after the night, and the files and folders the
    # night made a matter: two documents in two material folders give 7 files (the documents, 元数据,
    # two manifests, 检测报告, the completion marker) and 3 folders, made in staging and in the archive
    assert figures["night_files_per_matter"] == 7 + 2 * 3
    us = figures["new_file_us"]
    assert us["before_local_night"] > 0 and us["after_local_night"] > 0
    mean_ms = (us["before_local_night"] + us["after_local_night"]) / 2 / 1000
    assert abs(figures["new_files_ms_per_matter"] - 13 * mean_ms) < 0.01
    # the bound counts the stored package alone: its folder, 2 material folders and 7 files, 3 matters
    assert abs(bound["new_files_cpu_seconds"] - 3 * 10 * mean_ms / 1000) < 0.001
    assert not world.exists()  # removed without --keep


def test_bench_reads_the_same_matters_from_a_self_built_system_when_asked(tmp_path: Path) -> None:
    """--source sql: the world's matters in a self-built system's database, their attachments the
    same files on disk, read by the SQL connector with no HTTP server started."""
    world = tmp_path / "world"
    done = _bench("--matters", "3", "--docs", "2", "--size", "20000", "--json", "--source", "sql", "--keep",
                  "--dir", str(world), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["source"] == "sql" and figures["archived"] == 3
    config = yaml.safe_load((world / "guidang.yaml").read_text(encoding="utf-8"))
    assert [(s["name"], s["kind"]) for s in config["sources"]] == [("zjxt", "sql")]
    assert not (world / "bench-logs" / "simulator.log").exists()
    night = json.loads((world / "bench-logs" / "night-local.json").read_text(encoding="utf-8"))
    assert set(night["sources"]) == {"zjxt"} and night["sources"]["zjxt"]["archived"] == 3
    with sqlite3.connect(world / "sources" / "selfbuilt.sqlite") as db:  # 归档回传 reached the system
        assert db.execute("SELECT count(*) FROM SP_BJ WHERE GDZT = '1' AND GDDH IS NOT NULL").fetchone() == (3,)


def test_bench_keeps_the_world_it_archived_when_asked(tmp_path: Path) -> None:
    world = tmp_path / "world"
    done = _bench("--matters", "2", "--docs", "1", "--size", "5000", "--repeat", "1", "--dir", str(world), "--keep",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "guidang night (local)" in done.stdout and "targets:" in done.stdout
    assert "required-work floor (" in done.stdout
    assert (world / "ledger.sqlite").exists()
    assert len(list((world / "archive").rglob("元数据.xml"))) == 2  # one package per matter
    assert (world / "bench-logs" / "night-local.json").exists()
    assert not (world / "bagit").exists()  # the copies for bagit are gone once timed


def test_bench_refuses_a_folder_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me", encoding="utf-8")
    done = _bench("--matters", "1", "--dir", str(tmp_path / "busy"), cwd=tmp_path)
    assert done.returncode == 2
    assert "not an empty folder" in done.stderr
    assert (tmp_path / "busy" / "mine.txt").read_text(encoding="utf-8") == "keep me"


def test_a_night_that_quarantines_a_matter_gives_no_figures_but_says_why(tmp_path: Path) -> None:
    """One document altered after the source recorded its SHA-256: the night quarantines that matter,
    and the bench reports the night's outcome instead of rates over a night that did not archive all."""
    import pytest

    from guidang_bench.timing import BenchFailed, run_bench
    from guidang_demo.bench_world import build_bench_world

    world = build_bench_world(tmp_path / "w", matters=2, docs=1, size=5000) | {"size": 5000}
    victim = sorted(Path(world["documents_dir"]).iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a byte of the image: the same length, another digest
    victim.write_bytes(bytes(data))
    with pytest.raises(BenchFailed) as failed:
        run_bench(world, tmp_path / "w", repeat=1, say=lambda _m: None)
    message = str(failed.value)
    assert "did not archive all 2 matters" in message
    assert "archived 1" in message and "quarantined 1" in message and "quarantine reasons: Q-" in message, message


def test_the_prefect_target_allows_fifteen_percent_at_1_mb_and_thirty_at_100_kb() -> None:
    """"At most 15% slower than local" at 1 MB documents and 30% at 100 KB, over whole processes: at
    1 MB a Prefect process of 1.14 times the local one meets it and 1.16 times does not; at 100 KB
    1.29 times meets it and 1.31 does not."""
    from guidang_bench.figures import Night

    local = Night("local", 10.0, 12.0, 300.0, SUMMARY)
    met = {}
    for size, ratio in ((1_000_000, 1.14), (1_000_000, 1.16), (100_000, 1.29), (100_000, 1.31)):
        prefect = Night("prefect", 10.0, 12.0 * ratio, 300.0, SUMMARY)
        out = _figures(local=local, prefect=prefect, prefect_server="http://127.0.0.1:4200/api",
                       world={**WORLD, "size": size, **STATED_WORLDS[size]})
        met[(size, ratio)] = out["targets"]["prefect_slower"]["met"]
        assert out["targets"]["prefect_slower"]["applies"] is True
    assert met == {(1_000_000, 1.14): True, (1_000_000, 1.16): False, (100_000, 1.29): True, (100_000, 1.31): False}


def test_the_dask_target_allows_twenty_percent_over_the_local_night_at_any_size(tmp_path: Path) -> None:
    """A Dask night of 1.19 times the local process meets "within 20%", 1.21 times does not, at 1 MB
    and at 100 KB; and the Dask night runs the world's own configuration with only its chunks moved
    onto one local cluster of 2 workers."""
    from guidang_bench.figures import Night
    from guidang_bench.timing import dask_config
    from schemas.config import load_settings

    local = Night("local", 10.0, 12.0, 300.0, SUMMARY)
    for size in (1_000_000, 100_000):
        for ratio, met in ((1.19, True), (1.21, False)):
            out = _figures(local=local, dask=Night("dask", 10.0, 12.0 * ratio, 300.0, SUMMARY),
                           prefect_server="http://127.0.0.1:4200/api", world={**WORLD, "size": size})
            assert out["targets"]["dask_slower"]["met"] is met, (size, ratio)
            assert out["nights"]["dask"]["process_seconds"] == round(12.0 * ratio, 3)
    from guidang_demo.bench_world import build_bench_world

    world = build_bench_world(tmp_path / "world", matters=1, docs=1, size=2000)
    config = Path(world["config"])
    settings = load_settings(dask_config(config))
    assert (settings.orchestration.task_runner, settings.orchestration.dask_workers) == ("dask", 2)
    plain = load_settings(config)
    assert settings.sources == plain.sources and settings.ledger_url == plain.ledger_url
    assert settings.orchestration.workers == plain.orchestration.workers


def test_the_targets_are_read_like_for_like_whole_process_against_bagit_sm3_and_the_floor() -> None:
    """A night of 200 matters in 10 s of process (20 matters/s) against bagit-sm3 at 200/12 s
    (16.7 matters/s) is 1.2x: met at 1 MB; against a floor of 3.5 CPU seconds on 2 cores (200/1.75 s)
    it is 0.175x: missed at 1 MB (0.7x) and at 100 KB (0.25x)."""
    from guidang_bench.figures import Night

    local = Night("local", 8.0, 10.0, 300.0, SUMMARY)
    one_mb = _figures(local=local, bagit_sm3_seconds=12.0)
    assert one_mb["process_matters_per_s"] == 20.0 and one_mb["process_vs_bagit_sm3"] == 1.2
    assert one_mb["targets"]["vs_bagit_sm3"]["met"] is True
    assert one_mb["process_vs_floor"] == 0.175 and one_mb["targets"]["vs_floor"]["met"] is False
    # 200 matters is not the world the 1 MB targets are stated for (600 x 5 x 1 MB): measured, said so
    assert one_mb["targets"]["vs_bagit_sm3"]["applies"] is False
    assert one_mb["targets"]["vs_bagit_sm3"]["stated_world"] == "600 matters x 5 x 1 MB"
    from guidang_bench.figures import bench_text

    assert "(stated for 600 matters x 5 x 1 MB)" in bench_text(one_mb)
    stated = _figures(local=local, bagit_sm3_seconds=12.0, world={**WORLD, "matters": 600, "documents": 3_000})
    assert stated["targets"]["vs_bagit_sm3"]["applies"] and stated["targets"]["vs_floor"]["applies"]
    small = _figures(local=local, bagit_sm3_seconds=12.0, world={**WORLD, "size": 102_400, "matters": 2_000,
                                                                     "documents": 10_000})
    assert small["targets"]["vs_floor"]["target"].startswith(">= 0.25x") and small["targets"]["vs_floor"]["applies"]
    three_docs = _figures(local=local, world={**WORLD, "matters": 2_000, "size": 102_400, "documents": 6_000})
    assert three_docs["targets"]["vs_floor"]["applies"] is False  # 3 documents a matter: another world
    assert _figures(local=local)["targets"]["vs_bagit_sm3"]["met"] is None  # bagit without SM3: not measured


def test_a_floor_slower_than_bagit_sm3_marks_that_target_out_of_reach() -> None:
    """8 CPU seconds of required work on 2 cores is 4 s, against bagit-sm3's 3 s: no night can do better
    than 0.75x bagit-sm3 there, short of 1.2x, and the report says so beside the missed target; a floor
    of 2 s (4 CPU seconds on 2 cores) allows 1.5x, and the target is within reach."""
    from guidang_bench.figures import Night, bench_text
    from guidang_bench.yardsticks import Floor

    local = Night("local", 10.0, 12.0, 300.0, SUMMARY)
    steps = {"sha256_readback": 1.0, "pypdf_pages": 2.0}
    slow = _figures(local=local, bagit_sm3_seconds=3.0, floor=Floor({"sm3_sha256": 5.0, **steps}, 2))
    assert slow["floor_seconds"] == 4.0 and slow["floor_matters_per_s"] == 50.0
    reach = slow["targets"]["vs_bagit_sm3"]
    assert reach["reachable"] is False and reach["at_most"] == 0.75
    assert "(out of reach here: the floor allows at most 0.75)" in bench_text(slow)
    fast = _figures(local=local, bagit_sm3_seconds=3.0, floor=Floor({"sm3_sha256": 1.0, **steps}, 2))
    assert fast["targets"]["vs_bagit_sm3"]["reachable"] is True and "out of reach" not in bench_text(fast)


def test_a_target_past_the_bound_says_how_cheap_the_checks_would_have_to_be() -> None:
    """The bound adds to the floor (2 CPU s) and the checks (4 CPU s), both on 2 cores, a bare start-up
    of 0.2 s and 0.4 CPU s of copying and new files: 3.4 s for 200 matters, 58.8 matters/s, 0.882x
    bagit-sm3 (3 s), short of 1.2x. At 1.2x (80 matters/s, 2.5 s) the rest of the bound (1.4 s) leaves
    the checks 1.1 s on 2 cores: 2.2 CPU s against their 4. Checks of 0.4 CPU s bring it within reach
    (1.6 s, 1.88x), but not the floor's own target: 0.625x the floor where 0.7x is asked."""
    from guidang_bench.bound import Bound
    from guidang_bench.figures import Night, bench_text
    from guidang_bench.yardsticks import Floor

    local = Night("local", 10.0, 12.0, 300.0, SUMMARY)
    steps = {"sm3_sha256": 1.0, "sha256_readback": 0.5, "pypdf_pages": 0.5}
    parts = Bound(start_seconds=0.2, write_cpu_seconds=0.3, new_files_cpu_seconds=0.1, cores=2)
    heavy = _figures(local=local, bagit_sm3_seconds=3.0, bound=parts,
                     floor=Floor(steps, 2, checks={"pdf_inspection": 2.5, "pronom": 1.5}))
    assert heavy["bound"]["seconds"] == 3.4 and heavy["bound"]["matters_per_s"] == 58.824
    reach = heavy["targets"]["vs_bagit_sm3"]
    assert (reach["reachable"], reach["at_most"], reach["checks_allowed_cpu_seconds"]) == (False, 0.882, 2.2)
    text = bench_text(heavy)
    assert "(out of reach with these checks: at most 0.882; the checks would have to take at most 2.20 CPU s, " \
           "against 4.00)" in text
    assert "a bare start-up of 0.20 s, the archive's copy 0.30 CPU s, the packages' files and folders 0.10 CPU s" \
           "): 58.82 matters/s = 0.88x bagit with sm3+sha256" in text
    light = _figures(local=local, bagit_sm3_seconds=3.0, bound=parts,
                     floor=Floor(steps, 2, checks={"pdf_inspection": 0.3, "pronom": 0.1}))
    assert light["targets"]["vs_bagit_sm3"]["reachable"] is True
    # the floor's own target (0.7x at 1 MB) is tighter: the bound's 1.6 s against the floor's 1 s is 0.625x
    floor_line = next(line for line in bench_text(light).splitlines() if "x the required-work floor, whole" in line)
    assert floor_line.endswith("(out of reach with these checks: at most 0.625; the checks would have to take at "
                               "most 0.06 CPU s, against 0.40)")


def test_the_bound_s_copy_writes_each_document_whole_into_a_new_file(tmp_path: Path) -> None:
    """The archive's copy in the bound is the night's own O_DIRECT writer over every document (here
    sizes off the 4 KiB block, and one of several MiB), byte for byte; its CPU is what it reports."""
    from guidang_bench.bound import archive_write_cpu
    from guidang_bench.yardsticks import package_entries

    sizes = [1, 4095, 4096, 100_001, 3 * 1024 * 1024 + 7]
    files = []
    for i, size in enumerate(sizes):
        files.append(tmp_path / f"doc{i}.pdf")
        files[-1].write_bytes(os.urandom(size))
    cpu = archive_write_cpu(files, tmp_path / "copies")
    assert cpu > 0
    for i, path in enumerate(files):
        assert (tmp_path / "copies" / f"d{i}").read_bytes() == path.read_bytes()
    package = tmp_path / "archive" / "Z109" / "2026" / "Y" / "pkg"
    (package / "过程材料").mkdir(parents=True)
    for name in ("元数据.xml", "manifest-sm3.txt", "过程材料/a.pdf", ".complete"):
        (package / name).write_bytes(b"x")
    assert package_entries(tmp_path / "archive") is None  # no completion marker of the layout's name
    from schemas.layout import COMPLETION_MARKER

    (package / ".complete").rename(package / COMPLETION_MARKER)
    assert package_entries(tmp_path / "archive") == 1 + 1 + 4  # the package's folder, 过程材料, four files


def test_guidang_s_own_checks_are_reported_beside_the_floor_not_counted_in_it() -> None:
    """The floor is the targets' own: hashing, read-back and pypdf's page count. The whole inspection
    and PRONOM that guidang adds (4 CPU seconds here) are shown beside it and do not lower the floor's
    rate, so a night is not measured against a floor that its own extra checks have slowed."""
    from guidang_bench.figures import Night, bench_text
    from guidang_bench.yardsticks import Floor

    local = Night("local", 10.0, 12.0, 300.0, SUMMARY)
    floor = Floor({"sm3_sha256": 2.0, "sha256_readback": 0.5, "pypdf_pages": 1.5}, 2,
                  checks={"pdf_inspection": 2.5, "pronom": 1.5})
    f = _figures(local=local, floor=floor)
    assert f["floor_seconds"] == 2.0 and f["floor_matters_per_s"] == 100.0  # 4 CPU s on 2 cores, 200 matters
    assert f["floor_with_checks_matters_per_s"] == 50.0  # 8 CPU s on 2 cores
    assert f["process_vs_floor"] == round(200 / 12.0 / 100.0, 3)
    assert "pdf_inspection 2.50, pronom 1.50 CPU s; the floor with them: 50.00 matters/s" in bench_text(f)


def test_the_peak_rss_target_reads_the_guidang_run_trees_and_prints_the_dask_tree_beside_it() -> None:
    """The targets time `guidang run` processes; a Dask night's tree also holds the cluster it
    started (scheduler, nannies, workers): its peak is printed, not taken for the target's value."""
    from guidang_bench.figures import Night, bench_text

    local = Night("local", 10.0, 12.0, 340.0, SUMMARY)
    prefect = Night("prefect", 11.0, 13.0, 390.0, SUMMARY)
    dask = Night("dask", 14.0, 17.0, 680.0, SUMMARY)
    stated = {**WORLD, "size": 102_400, "matters": 2_000, "documents": 10_000}
    f = _figures(local=local, prefect=prefect, dask=dask, prefect_server="http://127.0.0.1:4200/api", world=stated)
    peak = f["targets"]["peak_rss"]
    assert (peak["value"], peak["met"], peak["applies"]) == (390.0, True, True)
    assert "its tree, the cluster's scheduler, nannies and workers included, peaked at 680.0 MB" in bench_text(f)
    over = _figures(local=Night("local", 10.0, 12.0, 520.0, SUMMARY), world=stated)["targets"]["peak_rss"]
    assert (over["value"], over["met"]) == (520.0, False)
    assert _figures(local=local)["targets"]["peak_rss"]["applies"] is False  # 200 matters at 1 MB: not stated


def test_the_disk_s_cost_of_a_new_file_is_printed_beside_the_floor_with_the_night_s_files_a_matter() -> None:
    from guidang_bench.figures import NewFiles, Night, bench_text

    local = Night("local", 10.0, 12.0, 300.0, SUMMARY)
    f = _figures(local=local, new_files=NewFiles(100.0, 300.0, 18))
    assert f["new_files_ms_per_matter"] == 3.6  # 18 at the mean of 100 and 300 us
    assert f["floor_matters_per_s"] == _figures(local=local)["floor_matters_per_s"]  # not in the floor
    assert ("a new file on this disk: 100 us of CPU before the local night, 300 us after; the night made 18 "
            "files and folders a matter: 3.60 ms of CPU a matter") in bench_text(f)
    assert "a new file on this disk" not in bench_text(_figures(local=local))


WORLD = {"matters": 200, "docs": 5, "size": 1_000_000, "documents": 1000, "bytes": 10**9}
STATED_WORLDS = {1_000_000: {"matters": 600, "documents": 3_000}, 100_000: {"matters": 2_000, "documents": 10_000}}
SUMMARY = {"totals": {"archived": 200}, "run_id": "r1"}


def _figures(**given: object) -> dict[str, object]:
    """guidang_bench.figures over a 200-matter world with the contenders' times given (bagit 3 s)."""
    from guidang_bench.figures import figures
    from guidang_bench.yardsticks import Floor

    args: dict[str, object] = {
        "hash_seconds": 4.0, "split_seconds": 2.0, "bagit_seconds": 3.0, "prefect": None, "passes": {},
        "prefect_server": None, "measured_at": "2026-12-02T15:00:00+08:00",
        "floor": Floor({"sm3_sha256": 2.0, "sha256_readback": 0.5, "pypdf_pages": 1.0}, 2),
    }
    world = given.pop("world", WORLD)
    return figures(world, **{**args, **given})  # type: ignore[arg-type]


def test_the_like_for_like_bagit_writes_the_archive_s_own_digests(tmp_path: Path) -> None:
    """bagit-python skips a digest hashlib lacks with a warning and carries on; the like-for-like
    contender must really have computed SM3 and SHA-256, the same values the archive records."""
    from guidang_bench.yardsticks import ARCHIVE_DIGESTS, bagit_seconds
    from schemas.digest import digest_chunks

    doc = tmp_path / "docs" / "GD202611010001-01.pdf"
    doc.parent.mkdir()
    doc.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 400)
    assert bagit_seconds([doc], tmp_path / "bags", ARCHIVE_DIGESTS) > 0
    bag = tmp_path / "bags" / "GD202611010001"
    expected = digest_chunks([doc.read_bytes()])
    assert (bag / "manifest-sm3.txt").read_text(encoding="utf-8").split() == [expected.sm3, f"data/{doc.name}"]
    assert (bag / "manifest-sha256.txt").read_text(encoding="utf-8").split() == [expected.sha256, f"data/{doc.name}"]
    assert not (bag / "manifest-sha512.txt").exists()


def test_bench_growth_prints_the_memory_kept_per_matter_between_two_nights(tmp_path: Path) -> None:
    done = _bench("--growth", "2,5", "--json", "--dir", str(tmp_path / "g"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    small, large = out["growth_nights"]
    assert (small["matters"], large["matters"]) == (2, 5)
    assert small["peak_pss_mb"] > 0 and large["peak_pss_mb"] > 0
    expected = (large["peak_pss_mb"] - small["peak_pss_mb"]) * 1000 / 3
    assert abs(out["growth_kb_per_matter"] - expected) < 0.1
    assert out["growth_target"]["applies"] is False  # stated between 5,000 and 50,000 matters
    assert not (tmp_path / "g").exists()
    refused = _bench("--growth", "5,2", cwd=tmp_path)
    assert refused.returncode == 2 and "SMALL < LARGE" in refused.stderr
