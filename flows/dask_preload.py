"""What the Dask workers of the night's own LocalCluster start with: the modules their tasks run.

The night's LocalCluster forks its workers from the night's forkserver (night/forkserver.py), which
imports this module beside the local workers' preload (night/worker_preload.py) while the run's
process starts the flow and collects the first window. A worker forked from it starts with Prefect,
Dask's worker side, the tasks' module and everything the stages use already imported, in pages it
shares with the server and its sibling worker. Started by Dask's default (spawn), each worker would
import all of that itself, with its first task, while the run's process waited on that task.

Dask also imports this module in each worker as its `preload`: where the workers were not forked
from a server that has it (another multiprocessing method), that import is the same work, done as
the worker starts rather than inside its first task.
"""

# ruff: noqa: F401 - imported for their side effect: loaded once, before the workers are forked
from __future__ import annotations

import gc

import distributed.nanny
import distributed.worker
import prefect.task_engine

import flows.nightly

gc.freeze()  # kept for the worker's whole life: no collection touches (and so copies) these pages
