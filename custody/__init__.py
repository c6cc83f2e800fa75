"""The bureau's side of the archive (保管, chain of custody): what checks and reports on what the
nights wrote, never what writes a package.

May import `schemas`, `guidang_io`, `retention`, `ledger`, `connectors`, `packager` and the
night's read-side helpers in `night` (anchoring, the retention book); never `flows` or
`guidang_demo`.

    audit_verify     the chain, every matter row against its last event, and every checkpoint
    fixity           the archive repository re-read against what the ledger recorded
    register_gather  registers on demand: a night's or a batch's packages, gathered for packager.register
    batch_check      a DA/T 93 transfer batch checked against itself, its packages and the ledger
    reconcile        completed at the source against accounted for in the ledger (对账, 应归尽归)
    rollout          where each unit stands in the rollout (推进情况)
    disposition_holds  holds (冻结) placed and released, mirrored as the store's legal hold
    appraisal        an appraisal's approval and what it changes on the store; a review read back
    destruction      an approved appraisal's records destroyed where the store allows it
    destruction_list the 销毁清单 on A4 (HTML, PDF)
    repair           a changed or missing object put back from a copy that matches the ledger
    every_copy       the primary and every replica opened together, for steps that must reach each
    web/             `guidang web`, the bureau's console (reads; holds and appraisals as the CLI does them)
"""
