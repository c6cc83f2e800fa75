"""The Prefect flow itself (the deployment's code path): one night under a shared test harness.

Of the tests that run flows in their own process, only this module starts Prefect (the others run
Prefect in subprocesses: deployments, the worker, `guidang serve`, the temporary server of
`--orchestrator prefect`); the harness costs 20-30 s here, so it is shared and used once. Why not
a server started from the session's migrated database (`prefect_db`) as those do: Prefect's log
and event workers run on threads of their own that see only the process's global settings, and
would report to a temporary server of their own; the harness sets those global settings too.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.world_support import unified_running

AS_OF = datetime(2026, 11, 26, 2, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_nightly_flow_runs_a_subflow_per_source_and_publishes_its_summary(
    prefect_harness: None, world: Path
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentTaskRunId

    from flows.nightly import nightly_transfer

    with unified_running(world):
        state = nightly_transfer(config=str(world / "guidang.yaml"), return_state=True)
    assert state.is_completed(), state
    summary = state.result()
    assert summary["status"] == "completed"
    assert set(summary["sources"]) == {"unified", "tzxm", "sjjc"}
    totals = summary["totals"]
    assert totals["archived"] > 200 and totals["waiting"] > 0 and totals["quarantined"] > 0

    async def flow_runs_and_artifacts() -> tuple[list[str], list[str]]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_task_run_id=FlowRunFilterParentTaskRunId(is_null_=False))
            )
            artifacts = await client.read_artifacts()
        return sorted(r.name for r in runs), sorted(a.key for a in artifacts if a.key)

    import asyncio

    subflows, artifact_keys = asyncio.run(flow_runs_and_artifacts())
    assert subflows == ["source-sjjc", "source-tzxm", "source-unified"]
    assert {"transfer-summary", "transfer-report"} <= set(artifact_keys)


def test_flow_parameters_validate_as_a_deployment_run_gives_them() -> None:
    """A deployment's run hands the flow JSON, which Prefect validates and converts with a model built
    from the signature: times become aware datetimes, a backfill without `since` is refused. (The
    served and deployed runs themselves are tests/test_prefect_deployment.py.)"""
    from datetime import datetime

    from prefect.exceptions import ParameterTypeError

    from flows.nightly import backfill_transfer, nightly_transfer
    from flows.operations import fixity_check, quarantine_retry

    params = nightly_transfer.validate_parameters({"config": "/srv/g.yaml", "as_of": "2026-12-01T02:00:00+08:00",
                                                   "sources": ["tzxm"]})
    assert isinstance(params["as_of"], datetime) and params["as_of"].utcoffset() is not None
    assert nightly_transfer.validate_parameters({})["config"] is None  # then GUIDANG_CONFIG, else ./guidang.yaml
    with pytest.raises(ParameterTypeError, match="since"):
        backfill_transfer.validate_parameters({"until": "2026-12-01"})
    assert isinstance(backfill_transfer.validate_parameters(
        {"since": "2026-11-01T00:00:00+08:00", "until": "2026-11-02T00:00:00+08:00"})["until"], datetime)
    assert fixity_check.validate_parameters({"sample": "3"})["sample"] == 3
    assert quarantine_retry.validate_parameters({"entries": [1, 2]})["entries"] == [1, 2]


def night_over_a_copy(pristine: Path, folder: Path, orchestration: dict[str, object], *, flow: bool) -> Path:
    """A copy of the small world in chunks of 3 under `orchestration`, after one night over it: the
    Prefect flow (`flow`) or the plain runner. Every matter it can archive is archived."""
    import shutil

    from flows.nightly import nightly_transfer
    from night.engine import run_nightly
    from schemas.config import load_settings
    from tests.test_scale_out import configure

    world = folder / "world"
    shutil.copytree(pristine, world)
    configure(world, chunk_size=3, orchestration=orchestration)
    with unified_running(world):
        if flow:
            state = nightly_transfer(config=str(world / "guidang.yaml"), as_of=AS_OF, return_state=True)
            assert state.is_completed(), state
            summary = state.result()
        else:
            summary = run_nightly(load_settings(world / "guidang.yaml"), now=AS_OF)
    assert summary["status"] == "completed" and summary["totals"]["archived"] > 20
    return world


def test_a_night_on_a_dask_cluster_leaves_the_archive_and_ledger_a_threaded_night_leaves(
    prefect_harness: None, small_pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Dask worker processes (a LocalCluster) run the chunks; they read the configuration
    themselves. Packages (every key and byte), 件号 and matter rows equal a threaded night's. The
    night's sources (three in this world) share one cluster: one LocalCluster is started, not one
    per source, and no worker process of the run's own machine beside it."""
    import distributed

    from night import forkserver
    from schemas.config import load_settings
    from tests.test_scale_out import matter_rows, packages

    started: list[str] = []

    class CountedCluster(distributed.LocalCluster):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            started.append(self.scheduler_address)

    monkeypatch.setattr(distributed, "LocalCluster", CountedCluster)
    pools: list[str] = []
    opened = forkserver.pool_context
    monkeypatch.setattr(forkserver, "pool_context", lambda: pools.append("pool") or opened())
    worlds = {
        "threads": night_over_a_copy(small_pristine, tmp_path / "threads", {"workers": 1}, flow=False),
        "dask": night_over_a_copy(small_pristine, tmp_path / "dask", {"task_runner": "dask", "dask_workers": 2},
                                  flow=True),
    }

    assert len(load_settings(worlds["dask"] / "guidang.yaml").sources) >= 2
    assert len(started) == 1, started  # one cluster for the whole night
    assert pools == []  # the chunks ran on the cluster: no local worker pool was started for them
    assert packages(worlds["threads"] / "archive") == packages(worlds["dask"] / "archive")
    assert len(packages(worlds["dask"] / "archive")) > 100
    assert matter_rows(f"sqlite:///{worlds['threads'] / 'ledger.sqlite'}") == matter_rows(
        f"sqlite:///{worlds['dask'] / 'ledger.sqlite'}"
    )


def test_a_prefect_night_on_threads_hands_its_chunks_to_the_local_workers_and_equals_a_local_night(
    prefect_harness: None, small_pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the flow's threads, each stage and transfer task hands its chunk to the night's worker
    processes (the run's one interpreter would otherwise do every chunk's parsing under one GIL),
    pipelined as the local night is: the packages, 件号 and matter rows are the local night's, and
    every chunk is a task run on the server named after its range."""
    import asyncio

    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    from night.fanout import ProcessFanout
    from tests.test_scale_out import matter_rows, packages

    handed: list[bool] = []
    run_unit = ProcessFanout.run_unit

    def spy(self: ProcessFanout, *args: object) -> object:
        handed.append(self._pool is not None or self._warming is not None)
        return run_unit(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ProcessFanout, "run_unit", spy)
    worlds = {mode: night_over_a_copy(small_pristine, tmp_path / mode, {"workers": 2}, flow=mode == "prefect")
              for mode in ("local", "prefect")}

    assert handed and all(handed)  # every stage and transfer task ran its chunk in a worker process
    assert packages(worlds["local"] / "archive") == packages(worlds["prefect"] / "archive")
    assert matter_rows(f"sqlite:///{worlds['local'] / 'ledger.sqlite'}") == matter_rows(
        f"sqlite:///{worlds['prefect'] / 'ledger.sqlite'}"
    )

    async def chunk_runs() -> list[str]:
        async with get_client() as client:
            subflow = (await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["source-unified"])),
                sort=FlowRunSort.START_TIME_DESC, limit=1))[0]  # this night's (the module's harness is shared)
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[subflow.id])), limit=200)
        return [r.name for r in runs]

    names = asyncio.run(chunk_runs())
    ranges = sorted(tuple(int(x) for x in n.split("[")[1].split(" of ")[0].split("-"))
                    for n in names if n.startswith("stage-unified["))
    assert len(ranges) > 3 and ranges[0][0] == 1  # the window's chunks as task runs, from its first matter
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))  # consecutive, none twice
    assert any(n.startswith("transfer-unified[") for n in names)


def test_a_night_with_an_unreachable_source_fails_in_one_clear_line_without_tracebacks(
    prefect_harness: None, small_world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expected failure (the source is down: no simulator runs) is a Failed run with the summary
    as its result, one ERROR line naming the source and one for the night, and no traceback in the
    log at INFO and above, Prefect's task and flow engines' lines included (the traceback is at DEBUG)."""
    import logging

    from flows import nightly

    monkeypatch.setattr(nightly, "collect_task", nightly.collect_task.with_options(retries=1, retry_delay_seconds=0))
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(n) for n in ("guidang", "prefect.task_runs", "prefect.flow_runs")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        state = nightly.nightly_transfer(config=str(small_world / "guidang.yaml"), sources=["unified"], as_of=AS_OF,
                                         return_state=True)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert state.is_failed(), state
    summary = state.result(raise_on_failure=False)
    assert summary["status"] == "failed" and "unified" in summary["sources"]
    assert "SourceUnavailable" in summary["sources"]["unified"]["error"]
    assert any(r.name.startswith("prefect.task_runs") and r.levelno >= logging.ERROR for r in records)  # seen
    assert [r for r in records if r.exc_info] == [], [r.getMessage()[:200] for r in records if r.exc_info]
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR and r.name == "guidang"]
    assert len([m for m in errors if m.startswith("source unified failed")]) == 1, errors
    assert len([m for m in errors if m.startswith("night ") and "failed" in m]) == 1, errors


def test_a_prefect_night_bounds_its_task_runs_per_stage_by_growing_its_chunks(
    prefect_harness: None, small_pristine: Path, tmp_path: Path
) -> None:
    """orchestration.max_chunks: a window that chunk_size would cut into many chunks is cut into at
    most max_chunks (each a task run the server records), larger ones, consecutive and covering the
    window; the archive and the ledger are the local night's."""
    import asyncio

    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    from tests.test_scale_out import matter_rows, packages

    worlds = {
        "local": night_over_a_copy(small_pristine, tmp_path / "local", {"workers": 1}, flow=False),
        "prefect": night_over_a_copy(small_pristine, tmp_path / "prefect", {"workers": 1, "max_chunks": 4},
                                     flow=True),
    }
    assert packages(worlds["local"] / "archive") == packages(worlds["prefect"] / "archive")
    assert matter_rows(f"sqlite:///{worlds['local'] / 'ledger.sqlite'}") == matter_rows(
        f"sqlite:///{worlds['prefect'] / 'ledger.sqlite'}"
    )

    async def chunk_runs() -> list[str]:
        async with get_client() as client:
            subflow = (await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["source-unified"])),
                sort=FlowRunSort.START_TIME_DESC, limit=1))[0]
            runs = await client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[subflow.id])), limit=200)
        return [r.name for r in runs]

    names = [n for n in asyncio.run(chunk_runs()) if n.startswith("stage-unified[")]
    total = int(names[0].split(" of ")[1].rstrip("]"))
    ranges = sorted(tuple(int(x) for x in n.split("[")[1].split(" of ")[0].split("-")) for n in names)
    assert total > 3 * 4  # chunk_size 3 alone would have made more than 4 chunks
    assert 2 <= len(ranges) <= 4, ranges
    assert ranges[0][0] == 1 and ranges[-1][1] == total
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))


@dataclass
class Matter:
    """A stand-in for a chunk's Work or Staged matter: a dataclass, which Prefect and Dask walk."""

    number: str
    facts: dict[str, str]


def test_a_chunk_reaches_its_task_whole_without_prefect_walking_or_dask_hashing_its_matters() -> None:
    """A task's chunk is one opaque value: Dask keys the task by the chunk's token instead of hashing
    each matter (which ran in the flow's process for every chunk submitted), Prefect's walk for
    futures does not enter it, and it crosses to a worker process whole, token and matters."""
    import pickle

    from dask.base import tokenize
    from prefect.utilities.collections import visit_collection

    from flows.nightly import Chunk

    matters = [Matter(f"M{i}", {"field": "x" * 100}) for i in range(50)]
    chunk = Chunk(matters)
    assert tokenize(chunk) == tokenize(Chunk(matters, chunk.token))  # the token alone names it
    assert tokenize(chunk) != tokenize(Chunk(matters))  # and each chunk submitted is a task of its own
    seen: list[object] = []
    visit_collection({"staged": chunk}, visit_fn=lambda e: seen.append(e) or e, return_data=True)
    assert not any(isinstance(e, Matter) for e in seen) and chunk in seen
    back = pickle.loads(pickle.dumps(chunk))
    assert back.token == chunk.token and back.items == matters and len(back) == 50


_UNPICKLED: list[str] = []


def _counted(number: str) -> Counted:
    _UNPICKLED.append(number)
    return Counted(number)


@dataclass
class Counted:
    """A matter that counts each time it is unpickled."""

    number: str

    def __reduce__(self) -> tuple[object, ...]:
        return (_counted, (self.number,))


def test_a_chunk_passes_through_a_process_that_does_not_read_it_without_its_matters_unpickled() -> None:
    """The Dask scheduler unpickles each task it is handed and pickles it again for a worker: a chunk
    crossing it (and any other hop) stays bytes; its matters are rebuilt once, where the task reads
    them, and only the length is known without them."""
    import pickle

    from flows.nightly import Chunk

    chunk = Chunk([Counted(f"M{i}") for i in range(20)])
    _UNPICKLED.clear()
    at_scheduler = pickle.loads(pickle.dumps(chunk))
    at_worker = pickle.loads(pickle.dumps(at_scheduler))
    assert _UNPICKLED == [] and len(at_worker) == 20 and at_worker.token == chunk.token
    assert [m.number for m in at_worker.items] == [f"M{i}" for i in range(20)]
    assert len(_UNPICKLED) == 20
    at_worker.items  # noqa: B018  (read again: not unpickled again)
    assert len(_UNPICKLED) == 20


def test_the_night_s_dask_workers_are_forked_from_its_forkserver_with_the_run_s_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The night's LocalCluster forks its workers from the night's forkserver, which has the stages
    imported, instead of spawning interpreters that import them with their first task; a forked
    worker would have the server's environment, so each is given the run's environment as it is
    when the cluster starts (a source's URL or password set after the server started included)."""
    import multiprocessing.forkserver as mp_forkserver
    from types import SimpleNamespace

    import distributed

    from flows.runners import night_cluster
    from night import forkserver

    forkserver.start(also=["flows.dask_preload"])
    server = mp_forkserver._forkserver._forkserver_pid
    monkeypatch.setenv("GUIDANG_TEST_SET_AFTER_THE_SERVER", "the run's")
    settings = SimpleNamespace(orchestration=SimpleNamespace(task_runner="dask", dask_address=None, dask_workers=2))
    with night_cluster(settings, dry_run=False) as address, distributed.Client(address) as client:  # type: ignore[arg-type]
        seen = client.run(lambda: (os.getppid(), os.environ.get("GUIDANG_TEST_SET_AFTER_THE_SERVER")))
    assert len(seen) == 2
    assert all(parent == server for parent, _ in seen.values()), (server, seen)
    assert all(value == "the run's" for _, value in seen.values()), seen
