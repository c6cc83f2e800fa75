"""The Prefect side of guidang and the `guidang` command line: the top of the stack.

    nightly, operations  the Prefect flows (the night, fixity, quarantine retry, backfill)
    prefect_ops          what tells the Prefect server (artifacts, run names, the API in use)
    deploy               the deployments of those flows (entrypoints by file path)
    cli/                 `guidang`, one module per command group

Only this package imports Prefect: the night's stages in `night/` stay plain functions that the
flows wrap. The command line lives here rather than in a package of its own because it is the top
of the stack: it imports everything, Prefect included (`guidang deploy`, `guidang serve`), and the
console script `guidang = flows.cli:app` that operators have installed stays valid. May import
every other package of ours.
"""
