"""Triage: what to do with each collected record, and quarantine, the one way a matter is set aside.

A source hands over everything completed in a window, including records it handed over before;
triage compares each with the ledger and keeps only new matters and new versions (补充材料).
Quarantine is written here once and used by every later stage that finds a defect (staging,
resume, transfer), so a quarantined matter is counted, logged masked and recorded the same way
whichever stage caught it. `unexpected_failure` is how those stages turn an exception nobody
planned for (an OSError, a bug) into a quarantine of the one matter it happened to, so that one
matter never stops a night.
"""

from __future__ import annotations

import errno
import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from flows.context import RunContext, SourceConfig, SourceSummary
from flows.window import Collected, Packed
from ledger import holds, queries
from ledger import waiting as ledger_waiting
from ledger.models import MatterState, QuarantineEntry
from packager import QuarantineError, StagedMatter, stage_matter
from packager.content import content_options
from packager.stage import Opener
from schemas.crashpoints import crashpoint
from schemas.digest import json_digest
from schemas.errors import SourceUnavailable
from schemas.findings import Finding, GuidangError
from schemas.model import Appraisal, InvalidMatter, Matter, mask_text

log = logging.getLogger("guidang")


@dataclass(slots=True)
class Work:
    """A matter to stage, packed (flows/window.py) until its chunk is worked on."""

    packed: Packed
    version: int
    reopened_quarantine: int | None = None

    @classmethod
    def of(cls, m: Matter, version: int, reopened_quarantine: int | None = None) -> Work:
        return cls(Packed.of(m), version, reopened_quarantine)

    @property
    def matter(self) -> Matter:
        """The matter, unpacked: each read builds it anew, so a stage reads it once."""
        return self.packed.load()


def triage(
    ctx: RunContext, source: SourceConfig, items: Iterable[Collected], summary: SourceSummary
) -> list[Work]:
    """Decide, per collected record, whether it is new, a new version (补充材料), unchanged, or invalid.
    Each matter is unpacked on its own and only its packed form is kept."""
    work: list[Work] = []
    waiting: list[tuple[Packed, str]] = []
    day = ctx.now.astimezone(ctx.settings.zone).date()  # the night's date decides what is enabled
    rows = newest_rows(items, summary)
    for start in range(0, len(rows), LOOKUP_BATCH):
        batch = rows[start : start + LOOKUP_BATCH]
        latest, held = _known(ctx, [r for r in batch if isinstance(r, Packed)])
        for row in batch:
            if isinstance(row, InvalidMatter):
                quarantine_invalid(ctx, row, summary)
                continue
            item = row.load()
            h = item.content_hash()
            last, open_q = latest.get((item.source, item.project_id)), held.get((item.source, item.project_id))
            if open_q is not None and open_q.content_hash == h:
                summary.held += 1  # still quarantined as it is; `guidang quarantine retry` re-tries it
                continue
            if last is not None and last.content_hash == h:
                summary.unchanged += 1
                continue
            reason = ctx.settings.unit_index.waiting_reason(item.agency, item.agency_code, item.matter_type, day)
            if reason is not None:
                waiting.append((row, reason.value))
                continue
            if last is None:
                work.append(Work(row, 1, open_q.id if open_q else None))
            elif last.state in (MatterState.NUMBERED, MatterState.TRANSFERRED):
                summary.unchanged += 1  # the source changed a matter we are still finishing: next run versions it
            else:
                work.append(Work(row, last.version + 1, open_q.id if open_q else None))
    record_waiting(ctx, waiting, summary)
    return work


WAITING_BATCH = 200  # waiting matters recorded per ledger transaction
LOOKUP_BATCH = 500  # collected matters looked up in the ledger per query


def _known(ctx: RunContext, rows: list[Packed]) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
    """What the ledger knows of these matters, two queries for the lot instead of two per matter
    (a 20,000-matter window spent most of its ~50 s of triage in them): each one's newest row
    (version, content hash, state) and its open quarantine entry (id, content hash)."""
    by_source: dict[str, list[str]] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r.project_id)
    latest: dict[tuple[str, str], Any] = {}
    held: dict[tuple[str, str], Any] = {}
    with ctx.ledger.read() as s:
        for name, ids in by_source.items():
            latest.update(((name, k), v) for k, v in queries.latest_versions(s, name, ids).items())
            held.update(((name, k), v) for k, v in queries.open_quarantines(s, name, ids).items())
    return latest, held


def record_waiting(ctx: RunContext, waiting: list[tuple[Packed | Matter, str]], summary: SourceSummary) -> None:
    """Count and record the matters of units or types not yet enabled (待启用): the watermark passes
    them like any other, so the ledger is where they are found again when the unit is enabled.
    Packed ones are unpacked a batch at a time (a unit not yet enabled may have thousands)."""
    summary.waiting += len(waiting)
    for start in range(0, len(waiting), WAITING_BATCH):
        batch = [(p.load() if isinstance(p, Packed) else p, reason)
                 for p, reason in waiting[start : start + WAITING_BATCH]]
        for m, reason in batch:
            log.info("waiting %s: %s (%s, 事项类型 %s)", m.key, reason, mask_text(m.agency), m.matter_type)
        if ctx.dry_run:
            continue
        with ctx.ledger.transaction() as s:
            for m, reason in batch:
                ledger_waiting.record_waiting(s, m, reason, run_id=ctx.run_id)


def newest_rows(items: Iterable[Collected], summary: SourceSummary) -> list[Collected]:
    """One record per 办件编号, the newest: by the update column, then by the order the source gave.

    A system without a primary key re-sends a corrected row beside the old one, and a source that
    pages unstably repeats a record; archiving the first seen would lose the correction. Every row
    left out is counted (`superseded`) and logged with both update times, never dropped silently.
    """
    rows = list(items)
    newest: dict[str, int] = {}
    for n, item in enumerate(rows):
        best = newest.get(item.project_id)
        if best is None or _recency(item, n) >= _recency(rows[best], best):
            newest[item.project_id] = n
    kept = set(newest.values())
    for n, item in enumerate(rows):
        if n in kept:
            continue
        winner = rows[newest[item.project_id]]
        summary.superseded += 1
        same = type(item) is type(winner) and _fingerprint(item) == _fingerprint(winner)
        log.warning(
            "%s: 办件编号 given more than once in this collect; row %d (updated %s) superseded by row %d "
            "(updated %s)%s",
            item.key, n + 1, _when(item), newest[item.project_id] + 1, _when(winner),
            ", an identical repeat" if same else ", which is the one archived",
        )
    return [item for n, item in enumerate(rows) if n in kept]


def _recency(item: Collected, n: int) -> tuple[bool, datetime, int]:
    at = item.updated_at
    if at is not None and at.tzinfo is None:  # never compare naive and aware times
        at = at.replace(tzinfo=UTC)
    return at is not None, at or datetime.min.replace(tzinfo=UTC), n


def _fingerprint(item: Collected) -> str:
    return item.load().content_hash() if isinstance(item, Packed) else json_digest(item.raw)


def _when(item: Collected) -> str:
    return item.updated_at.isoformat() if item.updated_at else "unknown"


def quarantine_invalid(ctx: RunContext, item: InvalidMatter, summary: SourceSummary, *, force: bool = False) -> None:
    """A record the canonical model refused; unless `force`d, an unchanged one is not quarantined twice."""
    findings = [Finding(p.code, item.key, mask_text(p.message)) for p in item.findings]
    raw_hash = json_digest(item.raw)
    with ctx.ledger.read() as s:
        open_q = queries.open_quarantine(s, item.source, item.project_id)
    if not force and open_q is not None and open_q.content_hash == raw_hash:
        summary.held += 1
        return
    record = {"invalid": item.model_dump(mode="json")}
    hold = holds.Hold(item.source, item.project_id, raw_hash, item.updated_at, record)
    _put_in_quarantine(ctx, summary, item.key, hold, findings)


def quarantine_matter(ctx: RunContext, m: Matter, findings: list[Finding], summary: SourceSummary) -> None:
    hold = holds.Hold(m.source, m.project_id, m.content_hash(), m.updated_at, {"matter": m.model_dump(mode="json")})
    _put_in_quarantine(ctx, summary, m.key, hold, findings)


def _put_in_quarantine(
    ctx: RunContext, summary: SourceSummary, key: str, hold: holds.Hold, findings: list[Finding]
) -> None:
    """Count, log (masked) and record one quarantined matter with everything needed to retry it."""
    summary.quarantined += 1
    summary.reasons.update({f.code for f in findings})
    log.warning("quarantined %s: %s", key, mask_text("; ".join(str(f) for f in findings)))
    if ctx.dry_run:
        return
    with ctx.ledger.transaction() as s:
        holds.quarantine(s, hold, findings, run_id=ctx.run_id)
    crashpoint("quarantined")


# The machine's faults, not the matter's: quarantining every matter of a night for a full disk would
# bury the cause under hundreds of entries, so these fail the source instead (its matters wait).
ENVIRONMENT_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
    errno.EMFILE, errno.ENFILE, errno.ENOMEM,
})
MESSAGE_LIMIT = 600


class StagingUnavailable(GuidangError):
    """The staging area failed (disk full, read-only, no permission): the source fails for the night
    and its matters are taken up by the next one; no matter is blamed."""


def unexpected_failure(matter_key: str, step: str, exc: Exception, staging_root: Path) -> QuarantineError:
    """The QuarantineError (Q-STAGE-FAILED) for an exception nobody planned for while one matter was
    staged, prechecked or finalized, to be handled like any other defect of that matter.

    Raises StagingUnavailable instead when the exception is the machine's (ENVIRONMENT_ERRNOS)."""
    text = _describe(exc, staging_root)
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        raise StagingUnavailable(f"{step} of {matter_key}: {text}") from exc
    if not isinstance(exc, OSError):  # a bug: the developer needs where it happened, in the log only
        trace = "".join(traceback.format_exception(exc)).replace(str(staging_root), "<staging>")
        log.info("%s of %s failed unexpectedly:\n%s", step, matter_key, mask_text(trace))
    finding = Finding(
        "Q-STAGE-FAILED", matter_key, f"{step} failed: {text}",
        details={"step": step, "exception": type(exc).__name__, "errno": getattr(exc, "errno", None)},
    )
    return QuarantineError(matter_key, [finding])


def stage_documents(ctx: RunContext, m: Matter, appraisal: Appraisal, open_document: Opener) -> StagedMatter:
    """`stage_matter` into the run's staging folder, for a night and for a resume alike: a defect
    is the QuarantineError it always was, and so is now an exception nobody planned for."""
    try:
        return stage_matter(
            m, appraisal, open_document, ctx.staging_root, pdf_parse_limit=ctx.settings.pdf_parse_limit_mb * 2**20,
            content=content_options(ctx.settings),
        )
    except (QuarantineError, SourceUnavailable):
        raise
    except Exception as exc:  # one matter never stops a night: a name too long, a bug
        raise unexpected_failure(m.key, "staging", exc, ctx.staging_root) from exc


def _describe(exc: Exception, staging_root: Path) -> str:
    """Class and message, masked and clipped; an OSError names the file by its place in the package
    (material folder/file name), never by the machine's staging path."""
    if isinstance(exc, OSError) and exc.errno is not None:
        text = f"[Errno {exc.errno}] {exc.strerror}"
        if exc.filename:
            text += ": " + "/".join(_clip(part, 80) for part in PurePath(str(exc.filename)).parts[-2:])
    else:
        text = str(exc).replace(str(staging_root), "<staging>")
    return mask_text(_clip(f"{type(exc).__name__}: {text}", MESSAGE_LIMIT))


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}…{text[-limit // 4 :]} ({len(text)} characters)"


def is_without_id(e: QuarantineEntry) -> bool:
    """An entry of a source row that had no 办件编号 (named "(row n)"), kept as the invalid record."""
    return e.project_id.startswith("(row ") and "invalid" in e.record


def settle_without_id(ctx: RunContext, e: QuarantineEntry, summary: SourceSummary) -> bool:
    """Resolve `e` when the source no longer holds its record among the rows without an id at the
    record's update time (the row was fixed, and is collected under its 办件编号, or deleted);
    True when resolved. A source that cannot say, or a record without update time, leaves it open."""
    finder = getattr(ctx.connector(ctx.settings.source(e.source)), "rows_without_id", None)
    updated = e.source_updated_at
    if finder is None or updated is None:
        return False
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    if any(json_digest(i.raw) == e.content_hash for i in finder(updated)):
        return False
    why = "fixed or gone at the source: no row without 办件编号 holds this record any more"
    with ctx.ledger.transaction() as s:
        holds.resolve_quarantine(s, e.id, why, run_id=ctx.run_id)
    summary.resolved.append(f"#{e.id} {e.project_id}: {why}")
    return True


def settle_rows_without_id(ctx: RunContext, source: str, summary: SourceSummary) -> None:
    """After a night's collect of `source`: settle each open entry of a row without 办件编号, so
    that one fixed at the source leaves the quarantine instead of being counted in it for ever."""
    with ctx.ledger.read() as s:
        entries = [e for e in queries.open_quarantine_entries(s, None) if e.source == source and is_without_id(e)]
    for e in entries:
        try:
            settle_without_id(ctx, e, summary)
        except (SourceUnavailable, GuidangError) as exc:  # looked at again by the next night
            log.warning("quarantine entry #%s of %s: cannot be looked up now: %s", e.id, source, mask_text(str(exc)))
            return
