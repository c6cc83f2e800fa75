"""The figures of one `guidang bench` run, the performance targets beside them, and the table for people.

Rates are matters (and MB = 10^6 bytes) per second of each contender's own timed work: the night's
duration as its ledger run row records it, and the in-process timings of bagit and the hash limit.
The headline figures (`matters_per_s`, the ratios) are the local night's, as the targets are; with
`--orchestrator prefect` the Prefect night is reported beside it and compared in `prefect_share`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guidang_bench.bound import bound_figures, checks_allowed

if TYPE_CHECKING:
    from guidang_bench.bound import Bound
    from guidang_bench.yardsticks import Floor

MB = 1_000_000
RSS_LIMIT_MB = 500.0
# The targets by the document size they are stated for: the night (whole process) at least this many
# times bagit-python with sm3+sha256 and the required-work floor, and the Prefect night at most this much
# slower than the local one.
STATED = {"1 MB": (1.2, 0.7, 0.15), "100 KB": (0.5, 0.25, 0.30)}
# ...and the world each is stated for: this many matters of 5 documents of that size (a short night
# weighs the process's start-up more, a long one less, so another count is another measurement).
STATED_MATTERS = {"1 MB": 600, "100 KB": 2_000}
DASK_SLOWER = 0.20  # a night on a 2-worker LocalCluster against the local worker processes, at any size


@dataclass
class Night:
    """One night's figures: its own duration (the ledger's run row), the child's wall time and peak RSS."""

    orchestrator: str
    night_seconds: float
    process_seconds: float
    peak_rss_mb: float
    summary: dict[str, Any]


@dataclass(frozen=True)
class NewFiles:
    """What a new file cost on the world's disk just before and just after the local night (CPU us,
    guidang_bench/yardsticks.new_file_us), and how many files and folders the night made a matter."""

    before_us: float
    after_us: float
    per_matter: int | None

    def ms_per_matter(self) -> float | None:
        """The night's new files and folders of one matter at the mean of the two readings."""
        if self.per_matter is None:
            return None
        return self.per_matter * (self.before_us + self.after_us) / 2 / 1000


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def _night(night: Night, matters: int, total_bytes: int) -> dict[str, Any]:
    return {
        "night_seconds": round(night.night_seconds, 3),
        "process_seconds": round(night.process_seconds, 3),
        "matters_per_s": _rate(matters, night.night_seconds),
        "process_matters_per_s": _rate(matters, night.process_seconds),
        "mb_per_s": _rate(total_bytes / MB, night.night_seconds),
        "peak_rss_mb": round(night.peak_rss_mb, 1),
        "archived": night.summary["totals"]["archived"],
        "stored_bytes": night.summary.get("stored", {}).get("bytes"),
        "run_id": night.summary["run_id"],
    }


def figures(
    world: dict[str, Any],
    *,
    hash_seconds: float,
    split_seconds: float,
    bagit_seconds: float,
    floor: Floor,
    bagit_sm3_seconds: float | None = None,
    local: Night,
    prefect: Night | None,
    prefect_server: str | None,
    dask: Night | None = None,
    measured_at: str,
    passes: dict[str, list[float]] | None = None,
    new_files: NewFiles | None = None,
    bound: Bound | None = None,
) -> dict[str, Any]:
    matters, total = world["matters"], world["bytes"]
    nights = {"local": _night(local, matters, total)}
    if prefect is not None:
        nights["prefect"] = _night(prefect, matters, total)
    if dask is not None:
        nights["dask"] = _night(dask, matters, total)
    head = nights["local"]
    files_ms = new_files.ms_per_matter() if new_files else None
    share = 1 - local.night_seconds / prefect.night_seconds if prefect and prefect.night_seconds > 0 else 0.0
    result: dict[str, Any] = {
        "matters": matters,
        "docs": world["documents"] // matters,
        "size": world["size"],
        "documents": world["documents"],
        "bytes": total,
        "orchestrator": "prefect" if prefect is not None else "local",
        "source": world.get("source", "unified"),
        "prefect_server": prefect_server,
        "measured_at": measured_at,
        "matters_per_s": head["matters_per_s"],
        "mb_per_s": head["mb_per_s"],
        "night_seconds": head["night_seconds"],
        "process_seconds": head["process_seconds"],
        "archived": head["archived"],
        # the `guidang run` trees the targets time; a Dask night's tree also holds its cluster
        "peak_rss_mb": max(n["peak_rss_mb"] for name, n in nights.items() if name != "dask"),
        "prefect_share": round(share, 3),
        "prefect_slower": round(prefect.process_seconds / local.process_seconds - 1, 3)
        if prefect and local.process_seconds > 0 else None,
        "dask_slower": round(dask.process_seconds / local.process_seconds - 1, 3)
        if dask and local.process_seconds > 0 else None,
        "process_matters_per_s": head["process_matters_per_s"],
        "bagit_seconds": round(bagit_seconds, 3),
        "bagit_matters_per_s": _rate(matters, bagit_seconds),
        "hash_limit_seconds": round(hash_seconds, 3),
        "hash_limit_matters_per_s": _rate(matters, hash_seconds),
        "hash_limit_mb_per_s": _rate(total / MB, hash_seconds),
        "hash_split_matters_per_s": _rate(matters, split_seconds),
        "hash_split_mb_per_s": _rate(total / MB, split_seconds),
        "bagit_sm3_seconds": round(bagit_sm3_seconds, 3) if bagit_sm3_seconds else None,
        "bagit_sm3_matters_per_s": _rate(matters, bagit_sm3_seconds) if bagit_sm3_seconds else None,
        "floor_seconds": round(floor.seconds, 3),
        "floor_matters_per_s": _rate(matters, floor.seconds),
        "floor_cores": floor.cores,
        "floor_cpu_seconds": {step: round(cpu, 6) for step, cpu in floor.steps.items()},
        "checks_cpu_seconds": {step: round(cpu, 6) for step, cpu in floor.checks.items()},
        "floor_with_checks_matters_per_s": _rate(matters, floor.seconds_with_checks),
        "new_file_us": {"before_local_night": round(new_files.before_us, 1),
                        "after_local_night": round(new_files.after_us, 1)} if new_files else None,
        "night_files_per_matter": new_files.per_matter if new_files else None,
        "new_files_ms_per_matter": round(files_ms, 3) if files_ms is not None else None,
        "nights": nights,
        "passes": {k: [round(p, 3) for p in v] for k, v in (passes or {}).items()},
        "method": {
            "night": "python -m flows.cli run --json as a child process; seconds = the ledger run row's "
                     "started_at..finished_at (interpreter start-up and imports excluded); process_seconds = "
                     "the child's wall time; peak_rss_mb = the peak of the summed PSS (resident memory, shared "
                     "pages counted once) of the night's process tree (its process and workers), sampled every "
                     "0.5 s (not ru_maxrss, which starts at the bench's own peak)",
            "bagit": "bagit.make_bag(checksums=[sha256, sha512], processes=1) over one folder per matter "
                     "holding copies of its documents, in the bench's process (copying not timed); the best "
                     "of the passes",
            "hash_limit": "one pass, each file read once in 1 MiB blocks, SM3 on one thread and SHA-256 on "
                          "another; the best of the passes",
            "hash_split": "the files split between 2 threads, each computing SM3 + SHA-256 (both cores "
                          "hashing, nothing else); reported, not a target",
            "bagit_sm3": "the same make_bag with checksums=[sm3, sha256], the digests the archive records of "
                         "every document: like for like, reported, not a target",
            "floor": "each document once through SM3+SHA-256 (one read), a SHA-256 read-back, and pypdf "
                     "opening it and counting its pages, in one thread; the least CPU seconds of each step "
                     "over the passes, summed and divided by floor_cores: a lower bound on any night (no "
                     "HTTP, 元数据, XSD, fsync or ledger in it), so floor_matters_per_s bounds the night's "
                     "rate from above",
            "checks": "guidang's own document checks over the same files, timed beside the floor and not in "
                      "it: the whole pypdf inspection (packager/pdf.inspect_pdf) and the PRONOM "
                      "identification (packager/format_id.identify_pronom); floor_with_checks_matters_per_s "
                      "adds them to the floor's CPU seconds",
            "bound": "guidang_bench/bound.py: the floor and the checks, plus a bare interpreter importing the "
                     "work's libraries (wall, best of 3) and, shared over the cores, every document written once "
                     "through the night's O_DIRECT writer and one stored package's files and folders a matter at "
                     "new_file_us: the most a night with these checks could reach",
            "new_files": "new_file_us: this thread's CPU per empty file, 1,000 made in a new folder of the "
                         "world just before and just after the local night; night_files_per_matter: a "
                         "stored package's files and folders plus its folders again in staging; "
                         "new_files_ms_per_matter: the two multiplied at the readings' mean, not in the floor",
            "page_cache": "not dropped (needs root): every file is read once untimed first, so every "
                          "contender reads from the page cache",
            "units": "MB = 10^6 bytes",
        },
    }
    result["vs_bagit"] = _ratio(result["matters_per_s"], result["bagit_matters_per_s"])
    result["vs_hash_limit"] = _ratio(result["matters_per_s"], result["hash_limit_matters_per_s"])
    result["floor_vs_bagit"] = _ratio(result["floor_matters_per_s"], result["bagit_matters_per_s"])
    if result["bagit_sm3_matters_per_s"]:
        result["vs_bagit_sm3"] = _ratio(result["matters_per_s"], result["bagit_sm3_matters_per_s"])
        result["process_vs_bagit_sm3"] = _ratio(head["process_matters_per_s"], result["bagit_sm3_matters_per_s"])
        result["floor_vs_bagit_sm3"] = _ratio(result["floor_matters_per_s"], result["bagit_sm3_matters_per_s"])
    result["process_vs_floor"] = _ratio(head["process_matters_per_s"], result["floor_matters_per_s"])
    result["bound"] = bound_figures(result, floor, bound)
    if result["bound"]:
        rate = result["bound"]["matters_per_s"]
        result["bound"]["vs_bagit_sm3"] = _ratio(rate, result["bagit_sm3_matters_per_s"]) \
            if result["bagit_sm3_matters_per_s"] else None
        result["bound"]["vs_floor"] = _ratio(rate, result["floor_matters_per_s"])
    result["targets"] = targets(result)
    return result


def _ratio(a: float, b: float) -> float:
    """a / b to three significant digits: a tiny world's night against a hash limit thousands of
    times faster is 0.000312, not 0.0 (three decimals rounded it away)."""
    return float(f"{a / b:.3g}") if b > 0 else 0.0


def stated_for(size: int) -> tuple[str, bool]:
    """The document size a run's targets are read against ("1 MB" or "100 KB"), and whether this
    world is that size (within 10%): a world of other documents is measured against the nearer one."""
    label = "1 MB" if size >= 316_000 else "100 KB"  # the geometric middle of the two
    stated = 1_000_000 if label == "1 MB" else 100_000
    return label, abs(size - stated) <= stated // 10


def targets(f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The performance targets (docs/benchmark.md), like for like, against this run's figures: the night
    as a whole process (start-up included) against bagit-python computing the archive's own digests
    (sm3 + sha256) and against the required-work floor, at the document size each target is stated for.
    `met` is true or false where this run measured the target, None where it did not (bagit without
    SM3, the Prefect target on a local-only bench); `applies` says whether this world is the one the
    target is stated for (`stated_world`: its documents' size and its number of matters, within 10%)."""
    label, sized = stated_for(f["size"])
    bagit_x, floor_x, prefect_slower = STATED[label]
    count = STATED_MATTERS[label]
    world = f"{count:,} matters x 5 x {label}"
    in_world = sized and f.get("docs") == 5 and abs(f["matters"] - count) <= count // 10
    prefect = f["orchestrator"] == "prefect"
    vs_sm3 = f.get("process_vs_bagit_sm3")
    b = f.get("bound") or {}
    sm3_rate = f.get("bagit_sm3_matters_per_s")
    # the most any night with these checks could reach here (guidang_bench/bound.py), else the floor
    sm3_most = b.get("vs_bagit_sm3") or f.get("floor_vs_bagit_sm3")
    floor_most = b.get("vs_floor") or 1.0
    return {
        "vs_bagit_sm3": {
            "target": f">= {bagit_x}x bagit-python with sm3+sha256, whole process ({label} documents)",
            "value": vs_sm3, "met": (vs_sm3 >= bagit_x) if vs_sm3 is not None else None, "applies": in_world,
            "stated_world": world,
            "reachable": (sm3_most >= bagit_x) if vs_sm3 is not None and sm3_most is not None else True,
            "at_most": sm3_most,
            "checks_allowed_cpu_seconds": checks_allowed(f, bagit_x * sm3_rate if sm3_rate else None),
        },
        "vs_floor": {
            "target": f">= {floor_x}x the required-work floor, whole process ({label} documents)",
            "value": f["process_vs_floor"], "met": f["process_vs_floor"] >= floor_x, "applies": in_world,
            "stated_world": world,
            "reachable": floor_most >= floor_x, "at_most": floor_most,
            "checks_allowed_cpu_seconds": checks_allowed(f, floor_x * f["floor_matters_per_s"]),
        },
        "peak_rss": {
            "target": f"peak RSS < {RSS_LIMIT_MB:.0f} MB, the local and Prefect nights' process trees",
            "value": f["peak_rss_mb"], "met": f["peak_rss_mb"] < RSS_LIMIT_MB,
            "applies": in_world or f["matters"] >= 20_000,
            "stated_world": f"{world}, or a 20,000-matter night",
        },
        "prefect_slower": {
            "target": f"Prefect night at most {prefect_slower:.0%} slower than local, whole processes, against "
                      f"a running Prefect server ({label} documents)",
            "value": f["prefect_slower"] if prefect else None,
            "met": (f["prefect_slower"] <= prefect_slower) if prefect else None,
            "applies": in_world and prefect and bool(f["prefect_server"])
            and not f["prefect_server"].startswith("a temporary"),
            "stated_world": f"{world}, against a running server",
        },
        "dask_slower": {
            "target": f"Prefect night on a LocalCluster of 2 Dask workers at most {DASK_SLOWER:.0%} slower than "
                      "the local worker processes, whole processes",
            "value": f.get("dask_slower"),
            "met": (f["dask_slower"] <= DASK_SLOWER) if f.get("dask_slower") is not None else None,
            "applies": f.get("dask_slower") is not None,
        },
    }


_SOURCES = {"unified": "the unified system's simulator over HTTP",
            "sql": "a self-built system's SQLite database and files on disk"}


def _new_files_line(f: dict[str, Any]) -> list[str]:
    us = f.get("new_file_us")
    if not us:
        return []
    made = f.get("night_files_per_matter")
    cost = (f"; the night made {made} files and folders a matter: {f['new_files_ms_per_matter']:.2f} ms of CPU a "
            "matter at their mean, beside the floor and not in it") if made else ""
    return [f"a new file on this disk: {us['before_local_night']:.0f} us of CPU before the local night, "
            f"{us['after_local_night']:.0f} us after{cost}"]


def _bound_line(f: dict[str, Any]) -> list[str]:
    b = f.get("bound")
    if not b:
        return []
    return [f"the most a night with these checks could reach (the floor, the checks, a bare start-up of "
            f"{b['start_seconds']:.2f} s, the archive's copy {b['write_cpu_seconds']:.2f} CPU s, the packages' files "
            f"and folders {b['new_files_cpu_seconds']:.2f} CPU s): {b['matters_per_s']:.2f} matters/s"
            + (f" = {b['vs_bagit_sm3']:.2f}x bagit with sm3+sha256" if b.get("vs_bagit_sm3") else "")
            + f", {b['vs_floor']:.2f}x the floor"]


def _out_of_reach(f: dict[str, Any], t: dict[str, Any]) -> str:
    if t.get("reachable", True):
        return ""
    if not f.get("bound"):
        return f"  (out of reach here: the floor allows at most {t['at_most']})"
    allowed = t.get("checks_allowed_cpu_seconds")
    cheaper = "" if allowed is None else "; out of reach even with no checks at all" if allowed <= 0 else (
        f"; the checks would have to take at most {allowed:.2f} CPU s, against {f['bound']['checks_cpu_seconds']:.2f}")
    return f"  (out of reach with these checks: at most {t['at_most']}{cheaper})"


def bench_text(f: dict[str, Any]) -> str:
    """The table a person reads: the contenders side by side, then the targets."""
    size_mb = f["bytes"] / MB
    lines = [
        f"guidang bench: {f['matters']} matters x {f['docs']} PDFs of about {f['size']:,} bytes "
        f"({f['documents']} files, {size_mb:,.1f} MB), from {_SOURCES[f.get('source', 'unified')]}",
        "",
        f"{'contender':<38}{'seconds':>10}{'matters/s':>12}{'MB/s':>10}",
    ]
    rows = [("hash limit (1 pass, SM3 | SHA-256)", f["hash_limit_seconds"], f["hash_limit_matters_per_s"],
             f["hash_limit_mb_per_s"]),
            ("hash split (2 threads x SM3+SHA-256)", f["matters"] / max(f["hash_split_matters_per_s"], 1e-9),
             f["hash_split_matters_per_s"], f["hash_split_mb_per_s"]),
            ("bagit make_bag (sha256+sha512, 1 proc)", f["bagit_seconds"], f["bagit_matters_per_s"],
             _rate(size_mb, f["bagit_seconds"])),
            *([("bagit make_bag (sm3+sha256, 1 proc)", f["bagit_sm3_seconds"], f["bagit_sm3_matters_per_s"],
                _rate(size_mb, f["bagit_sm3_seconds"]))] if f.get("bagit_sm3_seconds") else []),
            (f"required-work floor ({f['floor_cores']} cores)", f["floor_seconds"], f["floor_matters_per_s"],
             _rate(size_mb, f["floor_seconds"]))]
    for name, n in f["nights"].items():
        rows.append((f"guidang night ({name})", n["night_seconds"], n["matters_per_s"], n["mb_per_s"]))
    lines += [f"{name:<38}{sec:>10.2f}{rate:>12.2f}{mbs:>10.1f}" for name, sec, rate, mbs in rows]
    lines.append("")
    for name, n in f["nights"].items():
        lines.append(f"{name} night: {n['archived']} archived; process wall time {n['process_seconds']:.2f} s "
                     f"(with start-up); peak RSS {n['peak_rss_mb']:.1f} MB")
    if "prefect" in f["nights"]:
        lines.append(f"Prefect night against {f['prefect_server']}; prefect_share {f['prefect_share']:.3f} "
                     "(1 - t_local / t_prefect)")
    if "dask" in f["nights"]:
        lines.append(f"Dask night (Prefect, one LocalCluster of 2 workers) against {f['prefect_server']}: "
                     f"{f['dask_slower']:+.1%} process wall time against the local night; its tree, the "
                     f"cluster's scheduler, nannies and workers included, peaked at "
                     f"{f['nights']['dask']['peak_rss_mb']:.1f} MB (not in the peak RSS target's value)")
    lines += [
        f"night vs bagit {f['vs_bagit']:.2f}x, vs hash limit {f['vs_hash_limit']:.2f}x"
        + (f", vs bagit with the archive's digests {f['vs_bagit_sm3']:.2f}x" if "vs_bagit_sm3" in f else ""),
        f"like for like (the night's whole process, start-up included): {f['process_matters_per_s']:.2f} matters/s"
        + (f" = {f['process_vs_bagit_sm3']:.2f}x bagit with sm3+sha256" if "process_vs_bagit_sm3" in f else "")
        + f", {f['process_vs_floor']:.2f}x the required-work floor",
        "required-work floor: CPU seconds of each document's mandatory steps, done once each, shared "
        f"perfectly over {f['floor_cores']} cores",
        "  (" + ", ".join(f"{step} {cpu:.2f}" for step, cpu in f["floor_cpu_seconds"].items())
        + f"): no night can beat it; here it allows at most {f['floor_vs_bagit']:.2f}x bagit"
        + (f", {f['floor_vs_bagit_sm3']:.2f}x bagit with sm3+sha256" if "floor_vs_bagit_sm3" in f else ""),
        "guidang's own document checks, beside the floor and not in it: "
        + ", ".join(f"{step} {cpu:.2f}" for step, cpu in f["checks_cpu_seconds"].items())
        + f" CPU s; the floor with them: {f['floor_with_checks_matters_per_s']:.2f} matters/s",
        *_new_files_line(f),
        *_bound_line(f),
        "",
        "Night seconds are the run's own (ledger run row, start-up excluded, as for bagit and the hash limit);",
        f"bagit and the hash limit: the best of {len(f['passes'].get('bagit', [])) or 1} passes; the night ran once.",
        "the page cache was warmed first (every file read once untimed), so every contender read from memory.",
        "",
        "targets:",
    ]
    for t in f["targets"].values():
        met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        scope = "" if t["applies"] else f"  (stated for {t.get('stated_world', 'another world')})"
        lines.append(f"  {met:<13}{t['target']}: {t['value']}{scope}{_out_of_reach(f, t)}")
    return "\n".join(lines)
