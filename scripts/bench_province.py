"""A province simulated on one machine: one night over many fonds, run as 1, 2 and 4 `guidang run` processes.

    .venv/bin/python scripts/bench_province.py [--sources 8] [--fonds 90] [--matters 20000]
        [--docs 1] [--size 20000] [--processes 1,2,4] [--workers 1] [--pg postgresql://postgres@127.0.0.1:5432]

Figures, not a test. It builds a world of `--sources` districts' unified systems (each served by the
simulator in a process of its own) whose `--fonds` departments archive into fonds of their own, then
for each process count P: a fresh PostgreSQL ledger, the sources dealt out over P `guidang run`
processes started together (`--orchestrator local`), and while they run a sampler on a connection of
its own that reads, every 10 ms, which of the night's sessions wait on a lock and which hold the two
rows every writer serialises on: the hash chain's head (`event_chain_head`, locked FOR UPDATE by every
transaction that appends an event) and the 件号 sequences (`archive_sequences`, one row per fonds,
year, 保管期限 and 机构问题代码, locked while a chunk is numbered). A holder is seen through the
relation lock (RowShareLock) that SELECT ... FOR UPDATE takes beside its row lock, minus the sessions
that wait. Printed per P: matters/s, the run processes' own CPU seconds, the time spent waiting on each
row, and the share of the wall time each row was held: a row held a fraction U of the night bounds
the night at (matters / (U x wall)) matters/s however many processes are added.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guidang_bench.timing import child_env, start_simulator, stop_process
from guidang_demo.province_world import build_province_world

SAMPLE_SECONDS = 0.01
WATCHED = {"event_chain_head": "chain head", "archive_sequences": "件号 sequences"}


class LockSampler(threading.Thread):
    """Samples pg_stat_activity and pg_locks of one database until stopped."""

    def __init__(self, dsn: str, database: str) -> None:
        super().__init__(daemon=True)
        import psycopg2

        self.conn = psycopg2.connect(dsn, dbname=database)
        self.conn.autocommit = True
        self.database = database
        self.samples = 0
        self.waits: Counter[str] = Counter()  # samples x sessions waiting, by what their statement touches
        self.held: Counter[str] = Counter()  # samples in which some session held the row and did not wait
        self._halt = threading.Event()

    def run(self) -> None:
        cur = self.conn.cursor()
        while not self._halt.is_set():
            cur.execute(
                "SELECT a.pid, a.wait_event_type = 'Lock', a.query, "
                "array_remove(array_agg(c.relname::text), NULL) "
                "FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation' "
                "AND l.mode = 'RowShareLock' AND l.granted LEFT JOIN pg_class c ON c.oid = l.relation "
                "WHERE a.datname = %s AND a.pid <> pg_backend_pid() GROUP BY a.pid, a.wait_event_type, a.query",
                (self.database,),
            )
            holding: set[str] = set()
            for _pid, waiting, query, relations in cur.fetchall():
                if waiting:
                    self.waits[_kind(query or "")] += 1
                    continue
                holding.update(r for r in relations if r in WATCHED)
            for name in holding:
                self.held[WATCHED[name]] += 1
            self.samples += 1
            time.sleep(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.conn.close()


def _kind(query: str) -> str:
    for table, label in WATCHED.items():
        if table in query:
            return label
    return "other"


def _admin(dsn: str, statement: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dsn, dbname="postgres")
    conn.autocommit = True
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


def _night(world: dict[str, Any], world_dir: Path, processes: int, dsn: str, urls: dict[str, str],
           workers: int, dask: int = 0) -> dict[str, Any]:
    """One night over the world as `processes` run processes, or (`dask` > 0) as one Prefect night whose
    chunks run on a local Dask cluster of that many workers."""
    database = f"guidang_province_p{processes}" + (f"_dask{dask}" if dask else "")
    _admin(dsn, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    _admin(dsn, f"CREATE DATABASE {database}")
    for leftover in ("archive", "staging"):
        shutil.rmtree(world_dir / leftover, ignore_errors=True)
    (world_dir / "archive").mkdir()
    config = Path(world["config"])
    env = child_env(GUIDANG_PROVINCE_LEDGER=f"postgresql+psycopg2://{dsn.split('://', 1)[1]}/{database}",
                    GUIDANG_WORKERS=str(workers), GUIDANG_TASK_RUNNER="dask" if dask else "threads",
                    GUIDANG_DASK_WORKERS=str(max(dask, 1)), **urls)
    # the ledger's schema and the retention table first, so that P runs do not race to create them
    subprocess.run([sys.executable, "-m", "flows.cli", "retention", "import", "--config", str(config),
                    "--effective", "2020-01-01", str(world_dir / "retention.xlsx")],
                   env=env, cwd=world_dir, check=True, stdout=subprocess.DEVNULL)
    names = [s["name"] for s in world["sources"]]
    groups = [names[i::processes] for i in range(processes)]
    sampler = LockSampler(dsn, database)
    sampler.start()
    start = time.perf_counter()
    procs = []
    for i, group in enumerate(groups):
        out = (world_dir / f"p{processes}-{i}.json").open("wb")
        err = (world_dir / f"p{processes}-{i}.log").open("wb")
        command = [sys.executable, "-m", "flows.cli", "run", "--config", str(config),
                   "--orchestrator", "prefect" if dask else "local",
                   "--as-of", f"{world['until']}T00:00:00+08:00", "--json"]
        for name in group:
            command += ["--source", name]
        procs.append((subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=world_dir), out, err))
    cpu = 0.0
    codes = []
    for proc, out, err in procs:
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        codes.append(proc.returncode)
        cpu += usage.ru_utime + usage.ru_stime
        out.close()
        err.close()
    wall = time.perf_counter() - start
    sampler.stop()
    archived = 0
    for i in range(processes):
        text = (world_dir / f"p{processes}-{i}.json").read_text(encoding="utf-8", errors="replace")
        try:
            archived += json.loads(text[text.find("{"):])["totals"]["archived"]
        except (ValueError, KeyError):
            print(f"  process {i} of {processes}: no summary; see {world_dir / f'p{processes}-{i}.log'}")
    _admin(dsn, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    seconds = lambda n: n * wall / max(sampler.samples, 1)  # noqa: E731 - samples to seconds of this night
    return {
        "processes": f"dask x{dask}" if dask else processes, "exit_codes": codes, "archived": archived,
        "wall_s": round(wall, 1),
        "matters_per_s": round(archived / wall, 1),
        # the run processes' own CPU (their worker processes are not reaped through them, so not in it)
        "run_process_cpu_s": round(cpu, 1),
        "lock_wait_s": {k: round(seconds(v), 2) for k, v in sampler.waits.items()},
        "held_share": {k: round(v / max(sampler.samples, 1), 3) for k, v in sampler.held.items()},
        "ceiling_matters_per_s": {k: round(archived / seconds(v), 0) for k, v in sampler.held.items() if v},
        "samples": sampler.samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=8)
    parser.add_argument("--fonds", type=int, default=90)
    parser.add_argument("--matters", type=int, default=20000)
    parser.add_argument("--docs", type=int, default=1)
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--workers", type=int, default=1, help="orchestration.workers of each run process")
    parser.add_argument("--dask", type=int, default=0, help="also one Prefect night on a local Dask cluster of "
                        "this many workers (needs the dask extra)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--dir", type=Path, default=None, help="build the world here (removed afterwards "
                        "unless given)")
    args = parser.parse_args()
    world_dir = (args.dir or Path(tempfile.mkdtemp(prefix="guidang-province-"))).resolve()
    print(f"building {args.matters} matters x {args.docs} of {args.size:,} bytes over {args.sources} sources "
          f"and {args.fonds} fonds in {world_dir}", file=sys.stderr)
    world = build_province_world(world_dir, sources=args.sources, fonds=args.fonds, matters=args.matters,
                                 docs=args.docs, size=args.size, ledger_url="${GUIDANG_PROVINCE_LEDGER}")
    with Path(world["config"]).open("a", encoding="utf-8") as f:
        f.write("orchestration:\n  workers: ${GUIDANG_WORKERS:-1}\n  task_runner: ${GUIDANG_TASK_RUNNER:-threads}\n"
                "  dask_workers: ${GUIDANG_DASK_WORKERS:-2}\n")
    sims = []
    urls = {}
    try:
        for s in world["sources"]:
            proc, url = start_simulator(Path(s["data_dir"]), world_dir / f"{s['name']}-simulator.log")
            sims.append(proc)
            urls[f"GUIDANG_{s['name'].upper()}_URL"] = url
        results = []
        for p in (int(x) for x in args.processes.split(",")):
            print(f"night as {p} process(es) …", file=sys.stderr)
            results.append(_night(world, world_dir, p, args.pg, urls, args.workers))
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
        if args.dask:
            print(f"night on Dask ({args.dask} workers) …", file=sys.stderr)
            results.append(_night(world, world_dir, 1, args.pg, urls, args.workers, dask=args.dask))
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    finally:
        for proc in sims:
            stop_process(proc)
        if args.dir is None:
            shutil.rmtree(world_dir, ignore_errors=True)
    print(f"\n{world['matters']} matters, {args.fonds} fonds, {args.sources} sources, "
          f"{args.docs} x {args.size:,} B; orchestration.workers {args.workers} per run process")
    print(f"{'P':>7} {'matters/s':>9} {'wall s':>7} {'run CPU s':>9}  lock waits (s)        held share / ceiling")
    for r in results:
        waits = ", ".join(f"{k} {v}" for k, v in sorted(r["lock_wait_s"].items())) or "none"
        held = ", ".join(f"{k} {r['held_share'][k]:.0%} / {r['ceiling_matters_per_s'].get(k, '-')}/s"
                         for k in sorted(r["held_share"])) or "-"
        print(f"{r['processes']:>7} {r['matters_per_s']:>9} {r['wall_s']:>7} {r['run_process_cpu_s']:>9}  "
              f"{waits:<22} {held}")


if __name__ == "__main__":
    main()
