"""Transfer: build a numbered matter's package, store it, verify it, and tell the source (归档回传).

This is the second half of the crash-safety order (night/engine.py): the package's bytes depend
only on the ledger row, every file is verified by read-back as it is put, the completion marker
comes last, and only then does the ledger say `verified`. A run killed anywhere in here leaves the
row `numbered`, and the next run repeats the same puts (no-ops or completions, never a second copy).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from connectors.repositories.base import RepositoryError
from connectors.sources.base import SourceConnector
from guidang_io.crashpoints import crashpoint
from ledger import queries, store
from ledger.disposition_rules import active_holds
from ledger.models import MatterRecord, MatterState
from night.context import RunContext, SourceConfig, SourceSummary
from night.quarantine import quarantine_matter, unexpected_failure
from night.work import Staged
from packager import PackageResult, QuarantineError, discard, finalize_package, retire
from schemas.digest import sha256_bytes
from schemas.errors import InvariantBroken, SourceUnavailable
from schemas.findings import GuidangError
from schemas.layout import COMPLETION_MARKER
from schemas.model import mask_text

MARKER_SUFFIX = ".guidang-marker.json"  # a package's completion marker in staging, beside its folder

log = logging.getLogger("guidang")
T = TypeVar("T")

# The store's own trouble, not the package's: the matter stays numbered for the next night. A full
# archive disk (REPO-FULL) is one: freeing space is the operator's, and nothing stored is in doubt.
TRANSIENT_REPOSITORY_CODES = frozenset({"REPO-TRANSIENT", "REPO-UNREACHABLE", "REPO-FULL"})


@dataclass
class TransferOutcome:
    summary: SourceSummary = field(default_factory=SourceSummary)
    pending_updated_at: list[datetime] = field(default_factory=list)


def transfer_chunk(ctx: RunContext, source: SourceConfig, numbered: list[Staged]) -> TransferOutcome:
    """Build the chunk's packages, make their files durable together (`make_durable`: one sync
    instead of one fsync per file), store every package's files, then every package's completion
    marker, then record them in one ledger transaction and tell the source (归档回传) in one more.

    Each of the two stores is one repository `batch`, durable as a whole when it ends (on the fs
    repository one sync of the file system instead of an fsync per folder), and the second starts
    only when the first has ended: no marker is written before the files it vouches for are durable,
    and every package is durable (files, folders, marker) before the ledger transaction, which is
    all the crash-safety order asks. A run killed before it leaves the rows `numbered`, and the
    next run's puts find the same bytes and complete."""
    out = TransferOutcome()
    stored: list[StoredPackage] = []
    with ctx.ledger.read() as s:  # the chunk's rows in one query, not one read per package
        rows = queries.matters(s, [st.record_id for st in numbered if st.record_id is not None])
    built: list[tuple[Staged, MatterRecord, PackageResult]] = []
    for st in numbered:
        try:
            built.append(build_package(ctx, source, st, rows.get(st.record_id)))  # type: ignore[arg-type]
        except QuarantineError as exc:
            # Only a defect the precheck could not see lands here; the 件号 stays with this row
            # (state quarantined), so the sequence has no gap and the auditor sees why.
            discard(st.staged)
            quarantine_matter(ctx, st.matter, exc.findings, out.summary)
            with ctx.ledger.transaction() as s:
                store.mark_state(
                    s, store.locked_matter(s, st.record_id), MatterState.QUARANTINED, run_id=ctx.run_id,
                    payload={"codes": sorted(exc.codes)},
                )
        except AlreadyVerified:
            out.summary.archived += 1
    # every file the chunk hands over made durable at once, not with one fsync each
    ctx.repository.make_durable(result.folder / f.path for _, _, result in built for f in result.files)
    filed: list[tuple[Staged, MatterRecord, PackageResult, Filed]] = []
    with ctx.repository.batch():  # the chunk's folders made durable once, when all its files are in
        for st, rec, result in built:
            files = _or_pending(ctx, out, st, partial(store_files, ctx, rec, result))
            if files is not None:
                filed.append((st, rec, result, files))
    # the markers written beside their packages in staging and made durable together, then linked
    # in like the files: stored from memory, each was written, fsynced and read back on its own
    markers = [stage_marker(rec, result, files) for _, rec, result, files in filed]
    ctx.repository.make_durable(path for _, path in markers)
    try:
        with ctx.repository.batch():  # the markers' folder entries, likewise
            for (st, rec, result, files), marker in zip(filed, markers, strict=True):
                package = _or_pending(ctx, out, st, partial(store_marker, ctx, st, rec, result, files, marker))
                if package is not None:
                    stored.append(package)
                    out.summary.archived += 1
    finally:  # what is stored is recorded, also when a later package of the chunk fails the run
        record_verified(ctx, stored)
    out.summary.bytes += sum(p.stored_bytes for p in stored)
    acknowledge(ctx, ctx.connector(source), [p.record for p in stored], out.summary)
    return out


STORE_DOWN_AFTER = 3  # packages in a row the store did not take after its retries: it is down for this night


def _or_pending(ctx: RunContext, out: TransferOutcome, st: Staged, store_step: Callable[[], T]) -> T | None:
    """`store_step()`, or None when the source or the store had a hiccup after their own retries:
    the row stays numbered and the next run finishes it. Any other repository error (no bucket, no
    permission, a conflict, a corrupt read-back) fails the run loudly. A store that failed
    STORE_DOWN_AFTER packages in a row is not asked again this night: each ask costs its retries."""
    if ctx.store_failures_in_a_row >= STORE_DOWN_AFTER:
        out.summary.pending += 1
        out.pending_updated_at.append(st.matter.updated_at)
        return None
    try:
        found = store_step()
    except (SourceUnavailable, RepositoryError) as exc:
        if isinstance(exc, RepositoryError) and not _transient(exc):
            raise
        out.summary.pending += 1
        out.pending_updated_at.append(st.matter.updated_at)
        if isinstance(exc, RepositoryError):
            ctx.store_failures_in_a_row += 1
            out.summary.store_failed(mask_text(f"repository: {exc}"))
        log.warning("pending %s: %s", st.matter.key, exc)
        return None
    ctx.store_failures_in_a_row = 0
    return found


def _transient(exc: RepositoryError) -> bool:
    return any(f.code in TRANSIENT_REPOSITORY_CODES for f in exc.findings)


@dataclass
class StoredPackage:
    """A package whose every file and completion marker is durable in the repository."""

    record: MatterRecord
    staged: Staged
    listing: list[dict[str, object]]
    marker: bytes
    stored_bytes: int
    page_count: int | None
    folder: Path  # the package folder in staging, retired once the ledger has it


class AlreadyVerified(Exception):
    """A retried chunk's matter that already made it: nothing to build or store."""


def build_package(
    ctx: RunContext, source: SourceConfig, st: Staged, rec: MatterRecord | None = None
) -> tuple[Staged, MatterRecord, PackageResult]:
    """Finalize one numbered matter's package in staging (AlreadyVerified when it was).
    `rec` is the matter's row as the chunk read it (read here when not given)."""
    if rec is None:
        with ctx.ledger.read() as s:
            rec = queries.matter(s, st.record_id)
    if rec is None or not (rec.archival_code and rec.package_key and rec.numbered_at):
        raise InvariantBroken(f"matter row {st.record_id}: finalized before it was numbered")
    if rec.state == MatterState.VERIFIED:  # a retried chunk: this one already made it
        raise AlreadyVerified(rec.id)
    fonds = ctx.settings.fonds_for(source, rec.agency, st.matter.agency_code)
    try:
        result = finalize_package(
            st.staged,
            fonds=fonds,
            archival_code=rec.archival_code,
            item_number=rec.item_number,
            archived_at=rec.numbered_at.astimezone(ctx.settings.zone),  # the ledger holds UTC; packages show the zone
            check_warnings=ctx.settings.check_warnings,
            prechecked=st.prechecked,
        )
    except QuarantineError:
        raise
    except Exception as exc:  # nothing is stored yet: the matter is quarantined like any defect
        raise unexpected_failure(st.matter.key, "finalize", exc, ctx.staging_root) from exc
    crashpoint("finalized")
    return st, rec, result


def _lock(ctx: RunContext, rec: MatterRecord) -> tuple[date | None, bool]:
    """(retain_until, legal_hold) of the package's objects. Object Lock only when the configuration
    asks for it (a bucket without it is then a clear error): retain until the disposition date;
    永久 is a legal hold, which has no end date, and so is a hold (冻结) in force whose scope (a matter,
    a unit, a query) takes in this record: the store holds it from its first byte, as it holds the
    records the hold named when it was placed."""
    locking = getattr(ctx.settings.repository, "object_lock_mode", None) is not None
    if not locking:
        return None, False
    retain_until = date.fromisoformat(rec.disposition_date) if rec.disposition_date else None
    if rec.retention_period == "Y":
        return retain_until, True
    with ctx.ledger.read() as s:
        return retain_until, bool(active_holds(s, [rec.id]))


@dataclass(frozen=True)
class Filed:
    """A package's stored files: their listing, and the lock its marker is stored under too."""

    listing: list[dict[str, object]]
    retain_until: date | None
    legal_hold: bool


def store_files(ctx: RunContext, rec: MatterRecord, result: PackageResult) -> Filed:
    """Store one finalized package's files (inside the caller's batch); returns their listing."""
    retain_until, permanent = _lock(ctx, rec)
    listing: list[dict[str, object]] = []
    for f in result.files:
        ctx.repository.put_file(
            f"{rec.package_key}/{f.path}",
            result.folder / f.path,
            f.sha256,
            retain_until=retain_until,
            legal_hold=permanent,
            consume=True,  # staging's copy is handed over: on the archive's file system, linked
        )
        listing.append({"path": f.path, "size": f.size, "sha256": f.sha256, "sm3": f.sm3})
        crashpoint("stored-file")
    return Filed(listing, retain_until, permanent)


def stage_marker(rec: MatterRecord, result: PackageResult, files: Filed) -> tuple[bytes, Path]:
    """A package's completion marker (its 档号 and the listing of what was stored), written in
    staging beside the package's folder, not in it: the folder is the package as checked."""
    marker = json.dumps(
        {"archival_code": rec.archival_code, "files": files.listing}, ensure_ascii=False, sort_keys=True, indent=1
    ).encode("utf-8")
    path = result.folder.with_name(result.folder.name + MARKER_SUFFIX)
    path.unlink(missing_ok=True)  # a retried chunk's
    path.write_bytes(marker)
    return marker, path


def store_marker(ctx: RunContext, st: Staged, rec: MatterRecord, result: PackageResult, files: Filed,
                 staged_marker: tuple[bytes, Path]) -> StoredPackage:
    """Store one package's completion marker (`stage_marker`), once its files are durable
    (`store_files`' batch ended)."""
    marker, path = staged_marker
    crashpoint("before-marker")
    ctx.repository.put_file(f"{rec.package_key}/{COMPLETION_MARKER}", path, sha256_bytes(marker),
                            retain_until=files.retain_until, legal_hold=files.legal_hold, consume=True)
    total = sum(f.size for f in result.files) + len(marker)  # what this run stored (the summary's bytes)
    crashpoint("after-marker")
    return StoredPackage(rec, st, files.listing, marker, total, result.page_count, result.folder)


def record_verified(ctx: RunContext, packages: list[StoredPackage]) -> None:
    """One transaction: every stored package of the chunk becomes `transferred` then `verified`."""
    if not packages:
        return
    now = datetime.now(UTC)
    with ctx.ledger.transaction() as s:
        rows = queries.matters(s, [p.record.id for p in packages], for_update=True)  # one SELECT for the chunk
        for p in packages:
            store.mark_state(
                s,
                rows.get(p.record.id) or store.locked_matter(s, p.record.id),
                MatterState.TRANSFERRED,
                run_id=ctx.run_id,
                payload={"files": len(p.listing), "bytes": p.stored_bytes, "package_key": p.record.package_key},
                transferred_at=now,
                # the register's 文件数/字节数: the documents, as 元数据's 件数/总字节数 count them
                file_count=len(p.staged.staged.documents),
                total_bytes=sum(d.size for d in p.staged.staged.documents),
                page_count=p.page_count,
            )
            store.mark_state(
                s,
                rows.get(p.record.id) or store.locked_matter(s, p.record.id),
                MatterState.VERIFIED,
                run_id=ctx.run_id,
                payload={"marker_sha256": sha256_bytes(p.marker), "files": p.listing},
                verified_at=now,
            )
    crashpoint("verified")
    for p in packages:
        retire(p.folder, p.folder / str(p.listing[0]["path"]))  # type: ignore[operator, arg-type]
        p.folder.with_name(p.folder.name + MARKER_SUFFIX).unlink(missing_ok=True)  # the archive's link stays


def acknowledge(ctx: RunContext, connector: SourceConnector, records: list[MatterRecord],
                summary: SourceSummary) -> None:
    """归档回传 of verified matters (a chunk's just now, or those of earlier nights that did not reach
    the source: ledger/queries.unacknowledged), then one transaction for those that reached it; a
    failed acknowledgement is retried by the next run, never fatal."""
    done: list[int] = []
    failed = 0
    for rec in records:
        try:
            connector.acknowledge(rec.project_id, rec.archival_code or "")
        except GuidangError as exc:
            log.warning("acknowledgement of %s/%s failed, will retry: %s", rec.source, rec.project_id, exc)
            failed += 1
            summary.acknowledge_error = summary.acknowledge_error or mask_text(str(exc))
            continue
        done.append(rec.id)
    summary.unacknowledged += failed
    if done:
        at = datetime.now(UTC)
        with ctx.ledger.transaction() as s:
            rows = queries.matters(s, done)  # held here: the session keeps loaded rows only while referenced
            for matter_id in done:
                rec = rows.get(matter_id) or queries.matter(s, matter_id)
                if rec is not None:
                    store.mark_acknowledged(s, rec, at)
        crashpoint("acknowledged")
