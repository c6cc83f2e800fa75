"""Quarantine, the one way a matter is set aside, and how an unplanned failure becomes one.

Written once and used by every stage that finds a defect (triage, staging, resume, transfer), so a
quarantined matter is counted, logged masked and recorded the same way whichever stage caught it.
`unexpected_failure` is how those stages turn an exception nobody planned for (an OSError, a bug)
into a quarantine of the one matter it happened to, so that one matter never stops a night; the
machine's own faults (a full disk) fail the source instead, and no matter is blamed for them.
"""

from __future__ import annotations

import errno
import logging
import traceback
from pathlib import Path, PurePath

from guidang_io.crashpoints import crashpoint
from ledger import holds, queries
from night.context import RunContext, SourceSummary
from packager import QuarantineError
from schemas.digest import json_digest
from schemas.findings import Finding, GuidangError
from schemas.model import InvalidMatter, Matter, mask_text

log = logging.getLogger("guidang")


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
