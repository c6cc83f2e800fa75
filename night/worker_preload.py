"""What a night's worker processes share with the server they are forked from (night/fanout.py).

Imported once in multiprocessing's forkserver before any worker is forked: the modules a work unit
runs and the tables they build on first use (the PRONOM signatures compiled, the XSDs parsed). A
worker forked from that server starts with them in pages it shares with the server and its sibling
workers instead of building its own copy, which is both start-up time and memory per worker.
"""

# ruff: noqa: E402 - the imports below come after the watch starts, which is the point of it
from __future__ import annotations

import gc
import os
import threading

from night.forkserver import RUN_PID_ENV, wait_for_exit


def _end_with_the_run_while_loading() -> tuple[threading.Event, threading.Thread]:
    """Exit if the run's process dies while this server is still importing. `guidang run` starts
    the server before it knows whether it will need it (night/forkserver.py); a run killed in that
    time (SIGKILL, a crash point) cannot stop it, and an importing server holds the run's output
    streams open, so whoever waits on them would wait for the imports. Set the returned event once
    loaded and join the thread: the watch ends, and no thread of it is left when workers are forked
    from here. The run names itself: it may be gone, and this process adopted, by the time it looks."""
    run, loaded = int(os.environ.get(RUN_PID_ENV) or os.getppid()), threading.Event()

    def watch() -> None:
        if wait_for_exit(run, loaded, poll=0.05):
            os._exit(0)

    watcher = threading.Thread(target=watch, name="guidang-preload-watch", daemon=True)
    watcher.start()
    return loaded, watcher


_loaded, _watcher = _end_with_the_run_while_loading()

# Besides the work units and what they import: what a worker would otherwise import or set up on its
# first chunk, each for itself, copying the pages it writes into instead of sharing them (some 5 MB a
# worker): the connectors open_source imports only when asked for, the trust roots' certificate
# parser, SQLite's dialect, pypdf (which the packager imports with the first PDF it parses, some
# 25 MB with what pypdf imports), the pool's worker side, and the ORM's mappers, which SQLAlchemy
# configures on first use by writing into every mapped class.
import concurrent.futures.process  # noqa: F401

import asn1crypto.pem
import asn1crypto.x509  # noqa: F401
import pypdf.filters  # noqa: F401
import sqlalchemy.dialects.sqlite  # noqa: F401
from sqlalchemy.orm import configure_mappers

import connectors.sources.sql
import connectors.sources.unified  # noqa: F401
import night.work_units  # noqa: F401
from connectors.sources.http_direct import trust_context
from guidang_io.block_reads import keep_blocks_on_the_heap
from packager.format_id import _matcher
from schemas.findings import load_codes
from schemas.metadata import METADATA_XSD
from schemas.xmlio import load_xsd

keep_blocks_on_the_heap()  # glibc's setting, which the workers forked from here inherit (schemas/digest.py)

_matcher()
configure_mappers()
load_xsd(METADATA_XSD)
load_codes()  # the finding codes' texts (eight YAML files)
trust_context()  # the CA certificates every HTTPS connection of a worker trusts

# What is built above is kept for the worker's whole life and never freed: keep the cyclic garbage
# collector off those objects, whose pages a collection would otherwise touch and so copy into
# every worker (copy-on-write) instead of sharing them with the server.
gc.freeze()
_loaded.set()
_watcher.join()
