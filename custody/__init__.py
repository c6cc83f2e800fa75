"""The bureau's side of the archive (保管, chain of custody): what checks and reports on what the
nights wrote, never what writes a package.

May import `schemas`, `retention`, `ledger`, `connectors`, `packager` and the night's read-side
helpers in `night` (anchoring, the retention book); never `flows` or `guidang_demo`.

    audit_verify     the ledger's hash chain and checkpoints, against the repository
    fixity           stored packages' digests checked again (固定性检查)
    register_gather  registers on demand: a night's or a batch's packages, gathered for packager.register
    batch_check      a DA/T 93 batch checked as the receiving side would
    reconcile        what the sources say was completed against what the archive holds (应归尽归)
    rollout          which retention table version is in force, and where it is not yet applied
    disposition_holds  holds (冻结) placed and released, mirrored as the store's legal hold
    appraisal        an appraisal's approval and what it changes on the store; a review read back
    destruction      an approved appraisal's records destroyed where the store allows it
    destruction_list the 销毁清单 on A4 (HTML, PDF)
    repair           a changed or missing object put back from a copy that matches the ledger
    web/             `guidang web`, the bureau's read-only console
"""
