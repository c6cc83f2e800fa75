"""Where a Prefect night's chunk tasks run: the flow's threads, or Dask (one cluster per night).

A night on Dask gets one LocalCluster of `dask_workers` processes that all its sources share, or the
running scheduler `dask_address` names. The night's own cluster forks its workers from the night's
forkserver (night/forkserver.py), which has the stages, Prefect and Dask's worker side imported
(flows/dask_preload.py).
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from night.context import RunContext, SourceConfig
from schemas.config import Settings

log = logging.getLogger("guidang")


@contextmanager
def night_cluster(settings: Settings, *, dry_run: bool) -> Iterator[str | None]:
    """The scheduler address every source of a Dask night runs its tasks on: the configured
    `dask_address`, else one LocalCluster of `dask_workers` processes started here and closed when
    the night ends. One per night, not one per source: each cluster starts its worker processes and
    imports the stages in each, and clusters of several sources would share the same cores. None
    for a night on threads (or a dry run, which runs in this process)."""
    o = settings.orchestration
    if o.task_runner != "dask" or dry_run:
        yield None
    elif o.dask_address:
        yield o.dask_address
    else:
        import dask  # only a Dask night needs it
        from distributed import LocalCluster

        # The workers are forked from the night's forkserver, which `guidang run` started with the
        # stages, Prefect and Dask's worker side imported (flows/dask_preload.py); spawned, each
        # would import them itself with its first task. A forked worker has the server's
        # environment, which may be older than this process's (a server that outlives a night in a
        # long-lived process): each worker is given this process's environment as it starts.
        with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}), \
                LocalCluster(n_workers=o.dask_workers, threads_per_worker=1, processes=True,
                             dashboard_address=None, preload=["flows.dask_preload"],
                             env=_worker_environment()) as cluster:
            log.info("night's Dask cluster: %d worker process(es) at %s", o.dask_workers, cluster.scheduler_address)
            yield cluster.scheduler_address


def _worker_environment() -> dict[str, str]:
    """This process's environment for the night's Dask workers, with the Prefect API this flow
    reports to. On a temporary server (no PREFECT_API_URL) that is named nowhere in the environment:
    a worker without it would start a temporary server of its own, record its task runs there,
    and leave it running behind a worker that ends without running its exit handlers."""
    env = dict(os.environ)
    if not env.get("PREFECT_API_URL"):
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            env["PREFECT_API_URL"] = str(client.api_url)
    return env


def task_runner_for(ctx: RunContext, source: SourceConfig, dask_address: str | None = None) -> Any:
    """Threads bounded by the source's max_concurrency, or Dask: the night's cluster (`dask_address`,
    from night_cluster), else a running one the configuration names, else a local one of its own."""
    o = ctx.settings.orchestration
    if o.task_runner == "dask" and not ctx.dry_run:
        from prefect_dask import DaskTaskRunner  # only a Dask night needs it

        if dask_address or o.dask_address:
            return DaskTaskRunner(address=dask_address or o.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": o.dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=source.max_concurrency)
