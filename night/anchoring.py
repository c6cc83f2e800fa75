"""Checkpoints into the archive repository and back out (ledger/anchors.py says what they are).

`anchor_night` is the end of every night (night/context.py close_run): the checkpoint event is
appended in the night's last transaction, and its document is stored after the commit, together
with any earlier document a failed store left unwritten (they are pure functions of their events,
so a repeat is a no-op, never an overwrite). Where the store has Object Lock (`object_lock_mode`),
each document is put under a legal hold: no retention date ends an anchor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from connectors.repositories.base import ObjectVersion, Repository, RepositoryError
from ledger import anchors
from ledger.store import Ledger
from packager.transfer import README_FILE
from schemas import anchor
from schemas.anchor import CHECKPOINT_PREFIX, Checkpoint
from schemas.config import Settings
from schemas.findings import Finding
from schemas.layout import TRANSFERS_PREFIX

log = logging.getLogger("guidang")

MAX_DOCUMENT_BYTES = 64 * 1024  # a checkpoint document or a 说明文件 is small; larger is not one


def _locking(settings: Settings) -> bool:
    return getattr(settings.repository, "object_lock_mode", None) is not None


def present_checkpoints(repository: Repository) -> set[str] | None:
    """The checkpoint documents the repository holds now (None when it cannot say: noted later)."""
    try:
        return {o.key for o in repository.list(CHECKPOINT_PREFIX + "/")}
    except RepositoryError as exc:
        log.warning("checkpoints in the repository not listed (noted by a later night): %s", exc)
        return None


def store_checkpoints(ledger: Ledger, repository: Repository, settings: Settings) -> str | None:
    """Store every checkpoint document the ledger records and the repository never held; returns
    None, or what went wrong, in one line (also logged as ERROR).

    Write-once: a document the ledger saw stored (a `checkpoint-stored` event, which the next
    night's closing transaction appends for what it finds stored: ledger/anchors.note_stored), or of
    which the store keeps any version or delete marker, is never written again, even when missing,
    so a ledger forged after the anchor was deleted cannot have guidang write a new anchor from it.
    A store failure does not undo the night (the ledger holds it already): `audit verify` reports
    the missing anchor (A-CHECKPOINT-MISSING) and the next night writes it."""
    with ledger.read() as s:
        recorded = anchors.checkpoint_events(s)
        seen_stored = anchors.stored_documents(s)
    try:
        stored = {o.key for o in repository.list(CHECKPOINT_PREFIX + "/")}
        missing = [cp for cp in recorded if cp.where not in stored]
        once = seen_stored | ({v.key for v in _history(repository)} if missing else set())
        gone = [cp.where for cp in missing if cp.where in once]
        for cp in missing:
            if cp.where in once:
                continue
            repository.put_bytes(cp.where, anchor.checkpoint_bytes(cp), legal_hold=_locking(settings))
    except RepositoryError as exc:
        message = f"checkpoint 检查点 not stored in the repository (the next night retries): {exc}"
        log.error("step failed: %s", message)
        return message
    if gone:  # evidence removed: said every night until the bureau has seen to it, never papered over
        log.error("%d checkpoint(s) 检查点 that were stored are gone from the repository and are not written "
                  "again (guidang audit verify reports them): %s", len(gone), ", ".join(gone[:5]))
    return None


def _history(repository: Repository) -> list[ObjectVersion]:
    """Every version and delete marker of the checkpoint documents, where the store keeps versions."""
    history = getattr(repository, "history", None)
    return [] if history is None else list(history(CHECKPOINT_PREFIX + "/"))


def checkpoint_now(ledger: Ledger, repository: Repository, settings: Settings, *, run_id: str | None,
                   reason: str) -> Checkpoint:
    """A checkpoint outside a night (after a fixity check, or on demand): event, then document."""
    with ledger.transaction() as s:
        cp = anchors.record_checkpoint(s, run_id, reason)
    store_checkpoints(ledger, repository, settings)
    return cp


def _read_small(repository: Repository, key: str) -> bytes:
    return _read_blocks(repository.open(key), key)


def _read_blocks(blocks: Iterator[bytes], what: str) -> bytes:
    data = bytearray()
    for chunk in blocks:
        data += chunk
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ValueError(f"{what}: larger than {MAX_DOCUMENT_BYTES} bytes, not a checkpoint")
    return bytes(data)


@dataclass
class StoredAnchors:
    """What the repository holds: checkpoint documents, batch 说明文件 anchors, and unreadable ones."""

    checkpoints: list[Checkpoint] = field(default_factory=list)
    document_keys: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)


def read_anchors(repository: Repository) -> StoredAnchors:
    """Every checkpoint the repository holds: under `checkpoints/` (every version, where the store
    keeps them: an overwritten or deleted anchor is still read), and in each batch's 说明文件. A
    delete marker over a checkpoint is a finding of its own (A-CHECKPOINT-DELETED)."""
    out = StoredAnchors()
    try:
        history = _history(repository)
    except RepositoryError as exc:  # a store without versions' listing, or credentials without it
        history = []
        out.findings.append(Finding("A-CHECKPOINT-UNREADABLE", CHECKPOINT_PREFIX + "/",
                                    f"earlier versions of the checkpoints not read: {exc}"))
    for v in history:
        if v.delete_marker:
            if v.latest:
                out.findings.append(Finding("A-CHECKPOINT-DELETED", v.key,
                                            f"a delete marker (version {v.version_id}) hides this checkpoint; "
                                            "its earlier versions are still read"))
            continue
        if v.latest:
            continue  # the current version is read below, with the plain listing
        open_version = repository.open_version  # type: ignore[attr-defined]
        try:
            data = _read_blocks(open_version(v.key, v.version_id), f"{v.key} (version {v.version_id})")
            out.checkpoints.append(anchor.parse_checkpoint(v.key, data))
        except (ValueError, RepositoryError) as exc:
            out.findings.append(Finding("A-CHECKPOINT-UNREADABLE", f"{v.key} (version {v.version_id})", str(exc)))
    for obj in repository.list(CHECKPOINT_PREFIX + "/"):
        out.document_keys.add(obj.key)
        try:
            out.checkpoints.append(anchor.parse_checkpoint(obj.key, _read_small(repository, obj.key)))
        except (ValueError, RepositoryError) as exc:
            out.findings.append(Finding("A-CHECKPOINT-UNREADABLE", obj.key, str(exc)))
    for obj in repository.list(TRANSFERS_PREFIX + "/"):
        if not obj.key.endswith("/" + README_FILE):
            continue
        try:
            text = _read_small(repository, obj.key).decode("utf-8")
        except (ValueError, RepositoryError, UnicodeDecodeError) as exc:
            out.findings.append(Finding("A-CHECKPOINT-UNREADABLE", obj.key, str(exc)))
            continue
        cp = anchor.parse_readme(obj.key, text)
        if cp is not None:  # batches written before checkpoints existed carry none
            out.checkpoints.append(cp)
    return out
