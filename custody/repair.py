"""Repair from a second copy: an object `audit fixity` found changed or missing in one copy of the
archive is put back from another copy whose bytes match what the ledger recorded (size, SHA-256 and
SM3 where the ledger has them), and each repair is an event (`fixity-repaired`).

The ledger is the judge, never a majority of copies: a source copy is used only when its bytes hash
to the ledger's digests, so a damaged copy can never overwrite a good one. An object the ledger
records no SHA-256 for is reported, not repaired. The repaired object is locked as the night would
have locked it (from the ledger: the record's disposition date, 永久 or a hold), not as the damaged
object happens to be.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from connectors.repositories import open_copies, open_with_replicas
from connectors.repositories.base import Repository, RepositoryError
from connectors.repositories.disposal import retain_until_datetime
from custody.fixity import (
    Expected,
    FixityResult,
    ObjectsRead,
    check_fixity,
    expected_destroyed,
    expected_others,
    expected_packages,
    record_fixity,
)
from ledger import audit_queries, chain, disposition_rules
from ledger.store import Ledger
from schemas.config import Settings
from schemas.digest import MultiHasher
from schemas.findings import Finding, GuidangError, Severity

REPAIRABLE = frozenset({"A-OBJECT-CHANGED", "A-OBJECT-MISSING"})


def _expected(ledger: Ledger, keys: set[str]) -> dict[str, Expected]:
    out: dict[str, Expected] = {}
    for _code, objects in expected_packages(ledger):
        out.update({e.key: e for e in objects if e.key in keys})
    kept, _gone, _busy = expected_destroyed(ledger)
    out.update({e.key: e for e in [*kept, *expected_others(ledger)] if e.key in keys})
    return out


def _ledger_lock(ledger: Ledger, target: Repository, key: str, now: datetime) -> tuple[datetime | None, bool]:
    """The lock the night would have given the object (retain until the record's disposition date,
    永久 or held: a legal hold; checkpoints: a legal hold), where the target copy locks at all."""
    if getattr(getattr(target, "config", None), "object_lock_mode", None) is None:
        return None, False
    if key.startswith("checkpoints/"):
        return None, True
    parts = key.split("/")
    with ledger.read() as s:
        rec = audit_queries.archived_by_package(s, "/".join(parts[:4])) if len(parts) > 4 else None
        held = bool(rec is not None and disposition_rules.active_holds(s, [rec.id]))
    if rec is None:
        return None, False
    until = None
    if rec.disposition_date:
        until = retain_until_datetime(date.fromisoformat(rec.disposition_date))
    return (until if until is not None and until > now else None), held or rec.retention_period == "Y"


def _matches(source: Repository, exp: Expected) -> bool:
    h = MultiHasher()
    try:
        for chunk in source.open(exp.key):
            h.update(chunk)
    except RepositoryError:
        return False
    d = h.digests()
    return all(want is None or want == found for want, found in
               ((exp.sha256, d.sha256), (exp.sm3, d.sm3), (exp.size, d.size)))


def repair(ledger: Ledger, result: FixityResult, target_name: str, target: Repository,
           copies: dict[str, Repository | RepositoryError]) -> list[dict[str, Any]]:
    """Repair each changed or missing object of `target` from the first other copy that matches the
    ledger; the repaired findings leave `result.findings` for `result.repaired`. Returns the repairs."""
    wanted = {f.where for f in result.findings if f.code in REPAIRABLE}
    if not wanted:
        return []
    expected = _expected(ledger, wanted)
    sources = {n: r for n, r in copies.items() if n != target_name and not isinstance(r, RepositoryError)}
    repairs: list[dict[str, Any]] = []
    left: list[Finding] = []
    now = datetime.now(UTC)
    for f in result.findings:
        exp = expected.get(f.where) if f.code in REPAIRABLE else None
        done = None
        if exp is not None and exp.sha256:
            for name, source in sources.items():
                if not _matches(source, exp):
                    continue
                until, legal_hold = _ledger_lock(ledger, target, exp.key, now)
                target.restore(exp.key, source.open(exp.key), exp.sha256, retain_until=until, legal_hold=legal_hold)
                target.verify(exp.key, exp.sha256)
                done = {"key": exp.key, "copy": target_name, "from": name, "was": f.code, "sha256": exp.sha256}
                break
        if done is None:
            left.append(f if exp is None or f.code not in REPAIRABLE else Finding(
                f.code, f.where, f"{f.message}; no copy matches the ledger (A-COPY-UNREPAIRABLE)", details=f.details))
            continue
        repairs.append(done)
        result.repaired.append(Finding("A-OBJECT-REPAIRED", exp.key, f"{f.message}; repaired from copy {done['from']}",
                                       severity=Severity.WARNING))
        with ledger.transaction() as s:
            chain.append_event(s, "fixity-repaired", payload=done)
    result.findings = left
    return repairs


class NoSuchCopy(GuidangError):
    """`--copy NAME` names no configured copy, or that copy cannot be opened: nothing was checked."""


def check_and_repair(ledger: Ledger, settings: Settings, copy: str = "primary", *, sample: int | None = None,
                     progress: ObjectsRead | None = None) -> tuple[FixityResult, int]:
    """One copy checked against the ledger, what is wrong repaired from the others, the result recorded
    (`fixity-checked`, a checkpoint on every copy); returns (result, the event's seq)."""
    copies = open_copies(settings)
    target = copies.get(copy)
    if target is None:
        raise NoSuchCopy(f"--copy {copy}: no such copy; configured: {', '.join(copies)}")
    if isinstance(target, RepositoryError):
        raise NoSuchCopy(f"copy {copy} cannot be opened: {target}")
    result = check_fixity(ledger, target, sample=sample, progress=progress)
    result.copy = copy
    repair(ledger, result, copy, target, copies)
    return result, record_fixity(ledger, open_with_replicas(settings), settings, result)
