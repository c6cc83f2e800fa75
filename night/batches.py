"""DA/T 93 transfer batches: the 说明文件, 目录文件 and 登记表 that hand a night's packages over.

A batch is written once per night, after every source (night/engine.py), from what the ledger says
is verified, so it lists exactly what the repository holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from guidang_io.block_reads import digest_file
from guidang_io.crashpoints import crashpoint
from ledger import anchors, queries, store
from night.context import RunContext
from packager.transfer import TransferRow, write_transfer_batch
from schemas.digest import sha256_bytes
from schemas.findings import GuidangError
from schemas.layout import transfer_key
from schemas.metadata import beijing_date


def write_transfer_batches(ctx: RunContext) -> list[str]:
    """DA/T 93 transfers (移交批次) for every verified matter not yet in a batch, one fonds each and at
    most `transfer_batch_max` matters, in 档号 order: 说明文件, 目录文件, 登记表, stored under
    transfers/<batch id>/ beside the packages and recorded on each matter row. The limit keeps a
    batch's files a size the bureau can open, and the run's memory (a batch's rows and XML trees
    are held while it is written) independent of how many matters the night archived.

    "Not yet in a batch" rather than "verified by this run", so that matters verified by a run that
    was killed before its batch was written join the next batch instead of none. A batch's intent
    (id, time, members) is logged before its first file is stored; a batch begun and never recorded
    (the run died while storing it) is finished first, with its own id, time and members, so no
    half-written folder is left under transfers/ whatever day the next run is. The batch id is
    derived from its content, so finishing it rewrites the same objects (no-ops) and completes the rest."""
    written: list[str] = []
    ours = ctx.live_sources()  # a source whose lock was lost is another night's now
    with ctx.ledger.read() as s:
        unfinished = queries.unfinished_batches(s)
    for begun in unfinished:
        with ctx.ledger.read() as s:
            records = [r for mid in begun["members"] if (r := queries.matter(s, mid)) is not None]
        if ours is not None and any(r.source not in ours for r in records):
            continue  # another run's (over other sources, maybe still at work): its own next run finishes it
        created_at = datetime.fromisoformat(begun["created_at"]).astimezone(ctx.settings.zone)
        written.append(_write_batch(ctx, begun["fonds"], records, created_at, begun=begun["begun_seq"]))
    created_at = ctx.now.astimezone(ctx.settings.zone)  # 移交时间 in the configured zone, same instant
    limit, last_first = ctx.settings.transfer_batch_max, None
    while True:  # one batch of at most `limit` matters at a time: memory bounded by a batch, not by the night
        with ctx.ledger.read() as s:
            # the run's own sources only: a run over other sources beside it batches its matters itself
            rows = queries.verified_not_in_batch(s, ours, limit=limit)
        if not rows:
            return written
        fonds_code = rows[0].fonds or ""
        if rows[0].id == last_first:  # recorded batches leave the query: the same head twice is a bug, not a loop
            raise GuidangError(f"transfer batch: matter {rows[0].id} was batched but is still listed as not in a batch")
        last_first = rows[0].id
        written.append(_write_batch(ctx, fonds_code, [r for r in rows if (r.fonds or "") == fonds_code],
                                    created_at, begun=None))


class Member(Protocol):
    """What a batch lists of a matter: a ledger row, or the few columns `verified_not_in_batch` reads."""

    id: int
    archival_code: str | None
    agency: str
    title: str | None
    completed_at: datetime
    retention_period: str | None
    page_count: int | None
    total_bytes: int | None
    file_count: int | None


def _write_batch(
    ctx: RunContext, fonds_code: str, records: Sequence[Member], created_at: datetime, *, begun: int | None
) -> str:
    """Store one batch; `begun` is the seq of its begun event when a killed run left it unfinished.

    The begun event is the batch's checkpoint (its seq and hash go into the 说明文件 and 登记表), so a
    finished batch carries the same anchor as its first attempt and rewrites the same bytes."""
    fonds = next(f for f in ctx.settings.fonds if f.code == fonds_code)
    members = sha256_bytes("\n".join(sorted(r.archival_code or "" for r in records)).encode("utf-8"))
    batch_id = f"{fonds_code}-{beijing_date(created_at)}-{members[:8]}"
    if begun is None:
        with ctx.ledger.transaction() as s:
            event = store.begin_batch(
                s,
                {
                    "batch_id": batch_id,
                    "fonds": fonds_code,
                    "created_at": created_at.isoformat(),
                    "members": [r.id for r in records],
                },
                run_id=ctx.run_id,
            )
            anchor = anchors.checkpoint_of(event)
    else:
        with ctx.ledger.read() as s:
            anchor = anchors.checkpoint_of(queries.event(s, begun))
    packages = [
        TransferRow(
            archival_code=r.archival_code or "",
            responsible=r.agency,
            title=r.title or "",
            date=beijing_date(r.completed_at),
            period=r.retention_period or "",
            pages=r.page_count or 0,
            bytes=r.total_bytes or 0,
            file_count=r.file_count or 0,
        )
        for r in records
    ]
    files = write_transfer_batch(
        ctx.staging_root / "transfers" / batch_id,
        batch_id=batch_id,
        fonds=fonds,
        packages=packages,
        created_at=created_at,
        anchor=anchor,
    )
    digests = {}
    for path in files:
        d = digest_file(path)
        digests[path.name] = {"sha256": d.sha256, "sm3": d.sm3, "size": d.size}  # for `audit fixity`
        ctx.repository.put_file(f"{transfer_key(batch_id)}/{path.name}", path, d.sha256)
    crashpoint("batch-stored")
    with ctx.ledger.transaction() as s:
        store.record_batch(
            s,
            batch_id,
            [r.id for r in records],
            run_id=ctx.run_id,
            payload={
                "batch_id": batch_id,
                "fonds": fonds_code,
                "matters": len(records),
                "bytes": sum(p.bytes for p in packages),
                "files": [p.name for p in files],
                "digests": digests,
            },
        )
    crashpoint("batch-recorded")
    return batch_id
