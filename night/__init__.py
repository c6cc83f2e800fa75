"""The night (夜间归档): the engine that runs one night and its stages, as plain Python (no Prefect).

May import `schemas`, `guidang_io`, `retention`, `ledger`, `connectors` and `packager`; never
`custody` (the bureau's side reads what the night wrote, not the other way round), `flows` or
`guidang_demo`.
The Prefect flows in `flows/` and the plain runner both drive the same `engine`.

    engine          the stage order of one night: collect, triage, stage, number, transfer, batch
    context         RunContext, the open ledger, repository and retention book every stage takes
    window          a source's window of matters, packed (and spooled to disk) until worked on
    work            the types the stages hand each other: Work, Staged, a matter's row and 档号
    quarantine      the one way a matter is set aside, and unplanned failures turned into it
    triage          which collected matters are new, changed, waiting or already archived
    staging         appraise, fetch, inspect and precheck a chunk of matters
    numbering       档号 and 件号, committed gap-free in the run's process
    transferring    finalize, store, verify and acknowledge numbered matters (移交)
    batches         the night's DA/T 93 transfer batches, from what the ledger says
    enablement      which windows a source collects: 应归尽归 waiting and closing
    fanout          where a chunk runs: threads, worker processes (forkserver, worker_preload)
    work_units      the chunk-sized units of work a fanout runs, addressed by RunRef
    progress        the plain callbacks a night reports its counts through
    retention_book  the retention table versions a night appraises with
    report          a night's summary as text, rows and Markdown
    quarantine_retry  quarantined matters worked through the night's stages again
    lookup          a matter, package or 全宗号 an operator names on the command line
    anchoring       ledger checkpoints written at the end of a night, and read back
    replica_catch_up  each replica (`replicas:`) caught up from the primary as a night starts
"""
