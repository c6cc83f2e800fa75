"""`guidang bench`: generate a world, run the real night over it, and print it beside bagit and the hash limit.

A measurement, not a test: exit 0 whatever the figures say (the targets are printed as met or
missed), 1 when the night itself did not archive every matter, 2 for bad options (or no bagit).
Progress goes to stderr, so `--json` leaves stdout to the one JSON object.
"""

from __future__ import annotations

import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import JsonOpt, echo_json, fail
from flows.cli.run import Orchestrator


class Source(StrEnum):
    """Where the bench world's matters come from."""

    unified = "unified"
    sql = "sql"


def bench(
    matters: Annotated[int, typer.Option("--matters", help="matters in the generated world")] = 200,
    docs: Annotated[int, typer.Option("--docs", help="PDF documents per matter")] = 5,
    size: Annotated[int, typer.Option("--size", help="bytes per document (about)")] = 1_000_000,
    orchestrator: Annotated[
        Orchestrator, typer.Option(help="local: one night on threads; prefect: a local night, then a Prefect one")
    ] = Orchestrator.local,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="build the world here (absent or empty) instead of a temporary folder")
    ] = None,
    repeat: Annotated[
        int, typer.Option("--repeat", help="passes of bagit and of the hash limit (the best counts)")
    ] = 3,
    keep: Annotated[bool, typer.Option("--keep", help="keep the world, archive and ledger afterwards")] = False,
    office: Annotated[bool, typer.Option("--office", help="instead: a night over --matters matters of one DOCX "
                                         "of --size bytes each, normalised by LibreOffice (conversions/s)")] = False,
    parallel: Annotated[int, typer.Option("--parallel", help="--office: conversions at once")] = 2,
    growth: Annotated[str | None, typer.Option("--growth", metavar="SMALL,LARGE", help="instead: two nights of "
                      "SMALL and LARGE matters of one 20 KB document each, and the peak memory kept per matter "
                      "between them (stated for 5000,50000)")] = None,
    profile: Annotated[bool, typer.Option("--profile", help="instead: where the night's CPU goes, ms per matter "
                                          "by subsystem (the night in-process under cProfile, threads)")] = False,
    pstats_file: Annotated[Path | None, typer.Option("--pstats", help="--profile: keep the merged profile here "
                                                     "(python -m pstats FILE)")] = None,
    dask: Annotated[bool, typer.Option("--dask", help="also a Prefect night with its chunks on one local Dask "
                                       "cluster of 2 workers (needs the dask extra)")] = False,
    source: Annotated[Source, typer.Option("--source", help="unified: the documents served over HTTP by the "
                                           "unified system's simulator; sql: the same matters and files in a "
                                           "self-built system's database (自建系统), read from disk")] = Source.unified,
    as_json: JsonOpt = False,
) -> None:
    """Time the real night over N matters x K PDFs against bagit-python and the two-core hash limit."""
    if office:
        from flows.cli.bench_office import bench_office, office_text

        result = bench_office(matters, size, parallel, keep)
        if as_json:
            echo_json(result)
        else:
            typer.echo(office_text(result))
        if result["archived"] != matters or result["renditions"] != matters:
            raise fail("bench --office: not every matter was archived with its rendition", 1)
        return
    if growth is not None:
        _growth(growth, directory, keep, as_json)
        return
    if matters < 1 or docs < 1 or repeat < 1:
        raise fail("--matters, --docs and --repeat must be at least 1")
    if size < 1000:
        raise fail("--size must be at least 1000 bytes (a bench PDF is never smaller)")
    if directory is not None and directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise fail(f"--dir {directory}: exists and is not an empty folder (the bench builds a new world there)")
    if profile:
        _profile(matters, docs, size, directory, pstats_file, keep, as_json)
        return
    from importlib.util import find_spec

    if find_spec("bagit") is None:
        raise fail("guidang bench needs bagit-python: pip install 'guidang[bench]' (or bagit)")
    if dask and find_spec("prefect_dask") is None:
        raise fail("guidang bench --dask needs prefect-dask: pip install 'guidang[dask]'")
    from flows.prefect_ops import prefect_server
    from guidang_bench.figures import bench_text
    from guidang_bench.timing import BenchFailed, run_bench
    from guidang_demo.bench_world import build_bench_world

    world_dir = (directory or Path(tempfile.mkdtemp(prefix="guidang-bench-"))).resolve()
    world_dir.mkdir(parents=True, exist_ok=True)
    try:
        typer.echo(f"generating {matters} matters x {docs} PDFs of about {size:,} bytes in {world_dir}", err=True)
        world = build_bench_world(world_dir, matters=matters, docs=docs, size=size) | {"size": size}
        if source == Source.sql:
            from guidang_demo.bench_selfbuilt import as_selfbuilt

            world = as_selfbuilt(world_dir, world)
        try:
            result = run_bench(world, world_dir, orchestrator=str(orchestrator), repeat=repeat,
                               prefect_server=prefect_server, dask=dask)
        except BenchFailed as exc:
            raise fail(f"bench: {exc}", 1) from exc
        if as_json:
            echo_json(result)
        else:
            typer.echo(bench_text(result))
    finally:
        if keep:
            typer.echo(f"kept: {world_dir} (night logs in bench-logs/)", err=True)
        else:
            shutil.rmtree(world_dir, ignore_errors=True)


GROWTH_DOCUMENT_BYTES = 20_000


def _growth(sizes: str, directory: Path | None, keep: bool, as_json: bool) -> None:
    try:
        small, large = (int(part) for part in sizes.split(","))
    except ValueError:
        raise fail(f"--growth {sizes}: expected two matter counts, SMALL,LARGE (e.g. 5000,50000)") from None
    if not 0 < small < large:
        raise fail(f"--growth {sizes}: expected 0 < SMALL < LARGE")
    from guidang_bench.growth import growth_text, measure_growth
    from guidang_bench.timing import BenchFailed

    work_dir = (directory or Path(tempfile.mkdtemp(prefix="guidang-growth-"))).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = measure_growth(work_dir, (small, large), size=GROWTH_DOCUMENT_BYTES,
                                say=lambda m: typer.echo(m, err=True))
    except BenchFailed as exc:
        raise fail(f"bench --growth: {exc}", 1) from exc
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    if as_json:
        echo_json(result)
    else:
        typer.echo(growth_text(result))


def _profile(matters: int, docs: int, size: int, directory: Path | None, pstats_file: Path | None, keep: bool,
             as_json: bool) -> None:
    """`guidang bench --profile`: the split of guidang_bench/cpu_profile.py, printed."""
    from guidang_bench.cpu_profile import profile_text, run_profile
    from guidang_bench.timing import BenchFailed

    work = (directory or Path(tempfile.mkdtemp(prefix="guidang-profile-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        typer.echo(f"profiling a night of {matters} matters x {docs} PDFs of about {size:,} bytes in {work}", err=True)
        result = run_profile(work, matters=matters, docs=docs, size=size,
                             pstats_file=pstats_file.resolve() if pstats_file else None)
    except BenchFailed as exc:
        raise fail(f"bench --profile: {exc}", 1) from exc
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    if as_json:
        echo_json(result)
    else:
        typer.echo(profile_text(result))
