"""The transfer ledger (移交台账): every state a matter passes through, in SQL, under a hash chain.

Imports only `schemas` and `guidang_io` (its crash points); the night, the bureau's side and the
commands read and write it through these modules, never with SQL of their own.

    models       the tables (SQLAlchemy), holds (冻结) and appraisals (到期鉴定) among them;
                 migrations/ follow them (Alembic)
    store        the engine, write transactions and the pipeline's writes
    chain        the append-only event log, each event carrying the hash of the one before
    rows         a matter row's archival facts and their one digest
    anchors      checkpoints: the chain head written down outside the ledger, and checked against it
    sequences    the gap-free 件号 counters
    holds        the quarantine's writes
    disposition_rules   holds, appraisals, decisions and approval, and the rules that guard them
    destruction_steps   a destruction (销毁) begun, blocked, done, and the tombstones it leaves
    waiting      matters waiting for enablement (待启用)
    runlock      one night at a time per source
    queries      the night's and the commands' reads; audit_queries, night_queries, reconcile_queries
                 and rollout_queries those of the audit, a night's report, reconciliation and rollout
"""
