"""What a night's worker processes share with the server they are forked from (flows/fanout.py).

Imported once in multiprocessing's forkserver before any worker is forked: the modules a work unit
runs and the tables they build on first use (the PRONOM signatures compiled, the XSDs parsed). A
worker forked from that server starts with them in pages it shares with the server and its sibling
workers instead of building its own copy, which is both start-up time and memory per worker.
"""

from __future__ import annotations

import gc

# the connectors a unit opens on its first chunk, which open_source imports only when asked for
import connectors.sources.sql
import connectors.sources.unified  # noqa: F401
import flows.units  # noqa: F401 - the work units and everything they import
from packager.format_id import _matcher
from schemas.digest import keep_blocks_on_the_heap
from schemas.metadata import METADATA_XSD, load_xsd

keep_blocks_on_the_heap()  # glibc's setting, which the workers forked from here inherit (schemas/digest.py)

_matcher()
load_xsd(METADATA_XSD)

# What is built above is kept for the worker's whole life and never freed: keep the cyclic garbage
# collector off those objects, whose pages a collection would otherwise touch and so copy into
# every worker (copy-on-write) instead of sharing them with the server.
gc.freeze()
