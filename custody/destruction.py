"""Destruction (销毁) of an approved appraisal's records: the content goes, the record stays known.

Per record, in this order (a crash anywhere resumes with the next `guidang disposition destroy`):
1. every object to delete is asked for its lock first: where the store still protects one (S3
   Object Lock retain-until not reached, a legal hold), nothing of the record is deleted and it is
   recorded `blocked` with the reason, to be retried after that date;
2. `destruction-begun` is recorded (the rules checked once more: a hold placed since the approval
   stops it here);
3. the tombstone `_DESTROYED` is stored in the package folder: the record's 档号, who appraised
   and approved it, and the digests of every file deleted and every file kept; its bytes are a pure
   function of the ledger, so a resumed destruction stores the same bytes again (a no-op);
4. the documents are deleted (a missing one was deleted before the crash);
5. the row becomes `destroyed`, its event carrying the tombstone;
6. once the whole review is destroyed, each batch that held one of its records gets a 销毁记录
   beside its catalogue (`note_batches`), and registers mark the records 已销毁.

What is kept: 元数据.xml, 检测报告.xml, the manifests and the completion marker (the catalogue
entry and the proof of what was there), plus the tombstone. 永久 records never reach step 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from connectors.repositories.base import Repository, RepositoryError
from guidang_io.crashpoints import crashpoint
from ledger import audit_queries, destruction_steps, disposition_rules
from ledger.disposition_rules import DispositionRefused
from ledger.store import Ledger
from schemas.digest import sha256_bytes
from schemas.layout import (
    CHECK_REPORT_FILE,
    COMPLETION_MARKER,
    MANIFEST_SHA256,
    MANIFEST_SM3,
    METADATA_FILE,
    transfer_key,
)

TOMBSTONE = "_DESTROYED"
DESTRUCTION_NOTE = "销毁记录-{review}.json"  # beside a batch's 目录文件.xml
KEPT_FILES = frozenset({METADATA_FILE, CHECK_REPORT_FILE, MANIFEST_SM3, MANIFEST_SHA256})


@dataclass
class DestructionResult:
    review: int
    destroyed: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # 档号: code and reason
    objects_deleted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"review": self.review, "destroyed": self.destroyed, "blocked": self.blocked,
                "objects_deleted": self.objects_deleted}


def split_listing(listing: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(files to delete, files kept) of a package's `verified` listing."""
    gone = [f for f in listing if f["path"] not in KEPT_FILES]
    return gone, [f for f in listing if f["path"] in KEPT_FILES]


def tombstone_bytes(tombstone: dict[str, Any]) -> bytes:
    return json.dumps(tombstone, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")


def _lock_problem(repository: Repository, keys: list[str]) -> tuple[str, str] | None:
    for key in keys:
        why = repository.lock_state(key).blocks_deletion()
        if why:
            return ("D-LEGAL-HOLD" if why == "legal hold" else "D-RETAINED", f"{key}: {why}")
    return None


def destroy(ledger: Ledger, repository: Repository, review_id: int, *, user: str) -> DestructionResult:
    """Destroy every record of the approved review that is not destroyed yet (see the module docstring)."""
    result = DestructionResult(review_id)
    with ledger.read() as s:
        work = [(i.id, i.archival_code, rec.package_key or "", i.decided_by, i.reason)
                for i, rec in destruction_steps.to_destroy(s, review_id)]
        listings = audit_queries.verified_listings(s, [w[1] for w in work])
        rv = disposition_rules.review(s, review_id)
        approved_by = rv.approved_by
    for item_id, code, package_key, decided_by, reason in work:
        payload = listings.get(code) or {}
        gone, kept = split_listing(list(payload.get("files") or []))
        kept.append({"path": COMPLETION_MARKER, "sha256": payload.get("marker_sha256")})
        keys = [f"{package_key}/{f['path']}" for f in gone]
        problem = _lock_problem(repository, keys)
        try:
            with ledger.transaction() as s:
                if problem is not None:
                    destruction_steps.block(s, item_id, *problem, user=user)
                else:
                    destruction_steps.begin(s, item_id, user=user)
        except DispositionRefused as exc:  # held since the approval, or 永久
            with ledger.transaction() as s:
                destruction_steps.block(s, item_id, exc.findings[0].code, str(exc), user=user)
            result.blocked[code] = str(exc)
            continue
        if problem is not None:
            result.blocked[code] = f"{problem[0]} {problem[1]}"
            continue
        crashpoint("destruction-begun")
        tombstone = {"archival_code": code, "package_key": package_key, "review": review_id,
                     "decided_by": decided_by, "approved_by": approved_by, "reason": reason,
                     "deleted": gone, "kept": kept}
        data = tombstone_bytes(tombstone)
        repository.put_bytes(f"{package_key}/{TOMBSTONE}", data)
        for key in keys:
            try:
                result.objects_deleted += repository.delete(key)
            except RepositoryError as exc:  # the store refused after all: stop this record, loudly
                with ledger.transaction() as s:
                    destruction_steps.block(s, item_id, exc.findings[0].code if exc.findings else "REPO-LOCKED",
                                      str(exc), user=user)
                result.blocked[code] = str(exc)
                break
            crashpoint("destroyed-object")
        else:
            with ledger.transaction() as s:
                destruction_steps.finish(s, item_id, {**tombstone, "sha256": sha256_bytes(data)}, user=user)
            result.destroyed.append(code)
    note_batches(ledger, repository, review_id)
    return result


def note_batches(ledger: Ledger, repository: Repository, review_id: int) -> list[str]:
    """Once every record of the review is destroyed, each DA/T 93 batch that held one gets a
    销毁记录 beside its 目录文件 (the catalogue itself is never rewritten): which 档号 of the batch were
    destroyed, by which appraisal and approval. Stored, then recorded (`batch-destruction-noted`),
    so a crash between the two stores the same bytes again."""
    with ledger.read() as s:
        rv = disposition_rules.review(s, review_id)
        if rv.status != "completed":
            return []
        batches = destruction_steps.destroyed_in_batches(s, review_id)
        approved = rv.approved_by, rv.approved_at.isoformat(timespec="seconds") if rv.approved_at else None
    keys = []
    for batch_id, records in sorted(batches.items()):
        key = f"{transfer_key(batch_id)}/{DESTRUCTION_NOTE.format(review=review_id)}"
        data = json.dumps({"batch_id": batch_id, "review": review_id, "approved_by": approved[0],
                           "approved_at": approved[1], "destroyed": records}, ensure_ascii=False,
                          sort_keys=True, indent=1).encode("utf-8")
        repository.put_bytes(key, data)
        with ledger.transaction() as s:
            destruction_steps.note_batch(s, {"key": key, "batch_id": batch_id, "review": review_id,
                                       "sha256": sha256_bytes(data), "size": len(data)})
        keys.append(key)
    return keys
