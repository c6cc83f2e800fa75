"""The Prefect side of guidang and the `guidang` command line: the top of the stack.

    nightly, operations  the Prefect flows (the night, fixity, quarantine retry, backfill)
    prefect_ops          what a night tells the Prefect server: logs, events, artifacts, its name
    deploy               `guidang deploy` and `guidang serve`: the flows registered on a Prefect server
    cli/                 `guidang`, one module per command group

Only this package imports Prefect: the night's stages in `night/` stay plain functions that the
flows wrap. The command line lives here rather than in a package of its own because it is the top
of the stack: it imports everything, Prefect included (`guidang deploy`, `guidang serve`), and the
console script (`guidang = flows.cli:entry`; `flows.cli:app`, which earlier installs name, still
runs the same commands) stays valid. May import every other package of ours.
"""
