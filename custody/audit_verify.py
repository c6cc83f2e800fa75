"""`guidang audit verify`: the chain, every matter row against its last event, and every checkpoint.

Three checks, each catching what the one before cannot: the chain walk (ledger/chain.py) catches an
edited, inserted or deleted event; the row check (ledger/rows.py) an `UPDATE` of the matters table;
the checkpoints (ledger/anchors.py, stored in the archive repository) a truncated, forked or
wholesale recomputed chain, which the first two would accept because it is consistent in itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.repositories.base import Repository, RepositoryError
from custody.destruction import TOMBSTONE
from ledger import anchors, chain, destruction_steps
from ledger.rows import RowAnchors, verify_rows
from ledger.store import Ledger
from night.anchoring import read_anchors
from schemas.findings import Finding


@dataclass
class VerifyResult:
    events: int = 0
    chain_head: tuple[int, str] = (0, "")
    rows: int = 0
    checkpoints: int = 0
    destroyed: int = 0  # records destroyed by an approved appraisal, each with its tombstone checked
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "chain_head": self.chain_head[1],
            "chain_head_seq": self.chain_head[0],
            "matter_rows": self.rows,
            "checkpoints": self.checkpoints,
            "destroyed": self.destroyed,
            "findings": [f.to_dict() for f in self.findings],
        }


def verify_ledger(ledger: Ledger, repository: Repository | None) -> VerifyResult:
    """Every check; `repository` None (it could not be opened) is itself a finding: unanchored."""
    result = VerifyResult()
    row_anchors = RowAnchors()
    with ledger.read() as s:
        result.events, chain_findings = chain.verify_chain(s, on_event=row_anchors)
        result.chain_head = chain.chain_head(s)
        result.findings += chain_findings
        result.rows, row_findings = verify_rows(s, row_anchors)
        result.findings += row_findings
        recorded = anchors.checkpoint_events(s)
        absent = anchors.documents_of(s, anchors.ABSENT_KIND)
    if repository is None:
        result.findings.append(Finding("A-CHECKPOINT-UNREADABLE", "repository",
                                       "the archive repository could not be opened: no checkpoint was checked"))
        return result
    try:
        stored = read_anchors(repository)
    except RepositoryError as exc:
        result.findings.append(Finding("A-CHECKPOINT-UNREADABLE", "repository", f"checkpoints not read: {exc}"))
        return result
    result.checkpoints = len(stored.checkpoints)
    result.findings += stored.findings
    with ledger.read() as s:
        result.findings += anchors.check_checkpoints(s, stored.checkpoints)
    result.findings += anchors.missing_documents(recorded, stored.document_keys)
    result.findings += anchors.late_documents(absent, stored.document_keys)
    result.findings += _tombstones(ledger, repository, result)
    return result


def _tombstones(ledger: Ledger, repository: Repository, result: VerifyResult) -> list[Finding]:
    """A destroyed record is not a missing one: its row says destroyed, its `destroyed` event names
    the tombstone left in its package, and that tombstone must be there with the recorded digest."""
    findings: list[Finding] = []
    with ledger.read() as s:
        stones = destruction_steps.tombstones(s)
    result.destroyed = len(stones)
    for code, t in sorted(stones.items()):
        key = f"{t.get('package_key')}/{TOMBSTONE}"
        try:
            found = repository.head(key)
        except RepositoryError as exc:
            findings.append(Finding("A-OBJECT-MISSING", key, f"档号 {code} (destroyed): tombstone unreadable: {exc}"))
            continue
        if found is None:
            findings.append(Finding("A-OBJECT-MISSING", key, f"档号 {code} (destroyed): its tombstone is missing"))
        elif t.get("sha256") and found.sha256 and found.sha256 != t["sha256"]:
            findings.append(Finding("A-OBJECT-CHANGED", key, f"档号 {code} (destroyed): tombstone SHA-256 "
                                    f"{found.sha256}, the destruction recorded {t['sha256']}"))
    return findings
