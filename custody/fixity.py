"""`guidang audit fixity`: the archive repository re-read against what the ledger recorded.

The ledger knows every object it caused to be stored, with its digests: each verified package's
files (SM3, SHA-256 and size, in its `verified` event) and completion marker (SHA-256), each DA/T 93
batch's files (in its `transfer-batch` event; a batch whose event carries no digests is checked
for presence only), each checkpoint document (a pure function of its event). The check
lists the repository once (missing and unexpected objects need no reading), then streams the
objects of every package (`--all`) or of a random sample of packages (`--sample N`) through the one
SM3+SHA-256 hasher; batch files and checkpoints, small, are always read. Packages of matters still
being transferred (a night running meanwhile) are neither missing nor unexpected.

The result is itself an event (`fixity-checked`), anchored by a checkpoint.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connectors.repositories.base import Repository, RepositoryError
from custody.destruction import KEPT_FILES, TOMBSTONE
from ledger import anchors, audit_queries, chain, destruction_steps
from ledger.store import Ledger
from night.anchoring import checkpoint_now
from schemas import anchor
from schemas.config import Settings
from schemas.digest import MultiHasher
from schemas.findings import Finding
from schemas.layout import COMPLETION_MARKER, transfer_key

FINDINGS_LOGGED = 100  # the event names this many findings; the counts cover all
ObjectsRead = Callable[[int, int], None]  # (objects re-read so far, objects to re-read)


@dataclass(frozen=True, slots=True)
class Expected:
    key: str
    sha256: str | None
    sm3: str | None = None
    size: int | None = None
    what: str = ""  # 档号, batch id or checkpoint: named in the finding


@dataclass
class FixityResult:
    mode: str
    packages: int = 0
    packages_read: int = 0
    objects_listed: int = 0
    objects_expected: int = 0
    objects_read: int = 0
    bytes_read: int = 0
    destroyed: int = 0  # records destroyed by an approved appraisal: their documents are expected absent
    copy: str = "primary"  # which copy of the archive (`replicas:`) was checked
    findings: list[Finding] = field(default_factory=list)
    repaired: list[Finding] = field(default_factory=list)  # found wrong, put back from a copy (custody/repair.py)

    def counts(self) -> dict[str, int]:
        by: dict[str, int] = {"missing": 0, "changed": 0, "unexpected": 0}
        names = {"A-OBJECT-MISSING": "missing", "A-OBJECT-CHANGED": "changed", "A-OBJECT-UNEXPECTED": "unexpected"}
        for f in self.findings:
            if f.code in names:
                by[names[f.code]] += 1
        return by

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "mode": self.mode, "packages": self.packages, "packages_read": self.packages_read,
            "objects_listed": self.objects_listed, "objects_expected": self.objects_expected,
            "objects_read": self.objects_read, "bytes_read": self.bytes_read, "destroyed": self.destroyed,
            **self.counts(),
            "copy": self.copy, "repaired": [f.to_dict() for f in self.repaired],
            "findings": [f.to_dict() for f in self.findings],
        }


def _package_objects(payload: dict[str, Any], package_key: str, what: str) -> list[Expected]:
    out = [Expected(f"{package_key}/{f['path']}", f.get("sha256"), f.get("sm3"), f.get("size"), what)
           for f in payload.get("files") or []]
    out.append(Expected(f"{package_key}/{COMPLETION_MARKER}", payload.get("marker_sha256"), what=what))
    return out


def expected_packages(ledger: Ledger) -> Iterator[tuple[str, list[Expected]]]:
    """(档号, its objects) of every verified matter, from its last `verified` event, in chunks."""
    with ledger.read() as s:
        for rows in audit_queries.verified_in_chunks(s):
            listings = audit_queries.verified_listings(s, [r.archival_code or "" for r in rows])
            for r in rows:
                code = r.archival_code or ""
                yield code, _package_objects(listings.get(code, {}), r.package_key or "", f"档号 {code}")


def expected_destroyed(ledger: Ledger) -> tuple[list[Expected], set[str], set[str]]:
    """What destroyed records keep (元数据, manifests, the tombstone), the keys of their deleted
    documents, and the package prefixes of records whose destruction has begun and not ended."""
    kept: list[Expected] = []
    gone: set[str] = set()
    with ledger.read() as s:
        for code, t in destruction_steps.tombstones(s).items():
            where, what = t.get("package_key") or "", f"档号 {code} (destroyed)"
            kept += [Expected(f"{where}/{f['path']}", f.get("sha256"), f.get("sm3"), f.get("size"), what)
                     for f in t.get("kept") or []]
            kept.append(Expected(f"{where}/{TOMBSTONE}", t.get("sha256"), what=what))
            gone |= {f"{where}/{f['path']}" for f in t.get("deleted") or []}
        busy = set(destruction_steps.destroying(s))
        rows = audit_queries.archived_by_codes(s, sorted(busy))
    return kept, gone, {r.package_key + "/" for r in rows if r.package_key}


def expected_others(ledger: Ledger) -> list[Expected]:
    """Batch files (with the 销毁记录 a destruction added beside them) and checkpoint documents."""
    out: list[Expected] = []
    with ledger.read() as s:
        for payload in audit_queries.batch_payloads(s):
            digests = payload.get("digests") or {}
            for name in payload.get("files") or []:
                d = digests.get(name) or {}
                out.append(Expected(f"{transfer_key(payload['batch_id'])}/{name}", d.get("sha256"), d.get("sm3"),
                                    d.get("size"), f"batch {payload['batch_id']}"))
        for note in destruction_steps.batch_notes(s):
            out.append(Expected(note["key"], note.get("sha256"), size=note.get("size"),
                                what=f"销毁记录 of batch {note.get('batch_id')}"))
        for cp in anchors.checkpoint_events(s):
            data = anchor.checkpoint_bytes(cp)
            h = MultiHasher()
            h.update(data)
            d = h.digests()
            out.append(Expected(cp.where, d.sha256, d.sm3, d.size, f"checkpoint of event {cp.seq}"))
    return out


def _in_progress(ledger: Ledger) -> list[str]:
    with ledger.read() as s:
        return audit_queries.in_progress_prefixes(s)


def _not_listed(repository: Repository, exp: Expected) -> Finding:
    """Missing, or (a listing skips them) a symbolic link where the object was: asked of the repository."""
    try:
        repository.exists(exp.key)
    except RepositoryError as exc:
        if any(getattr(f, "code", "") == "REPO-LINK" for f in getattr(exc, "findings", [])):
            return Finding("A-OBJECT-LINK", exp.key, f"{exp.what}: {exc}")
    return Finding("A-OBJECT-MISSING", exp.key, f"{exp.what}: the ledger recorded it; the repository does not hold it")


def _read(repository: Repository, exp: Expected, result: FixityResult) -> None:
    h = MultiHasher()
    try:
        for chunk in repository.open(exp.key):
            h.update(chunk)
    except RepositoryError as exc:
        linked = any(getattr(f, "code", "") == "REPO-LINK" for f in getattr(exc, "findings", []))
        result.findings.append(Finding("A-OBJECT-LINK" if linked else "A-OBJECT-MISSING", exp.key,
                                       f"{exp.what}: cannot be read: {exc}"))
        return
    d = h.digests()
    result.objects_read += 1
    result.bytes_read += d.size
    wrong = [
        f"{name} {found} (the ledger recorded {want})"
        for name, want, found in (
            ("size", exp.size, d.size), ("SHA-256", exp.sha256, d.sha256), ("SM3", exp.sm3, d.sm3)
        )
        if want is not None and want != found
    ]
    if wrong:
        result.findings.append(Finding(
            "A-OBJECT-CHANGED", exp.key, f"{exp.what}: " + "; ".join(wrong),
            details={"expected": {"sha256": exp.sha256, "sm3": exp.sm3, "size": exp.size},
                     "found": {"sha256": d.sha256, "sm3": d.sm3, "size": d.size}},
        ))


def check_fixity(ledger: Ledger, repository: Repository, *, sample: int | None = None,
                 rng: random.Random | None = None, progress: ObjectsRead | None = None) -> FixityResult:
    """Compare the repository with the ledger; `sample` N reads N random packages instead of all.
    Reading is the long part: `progress` is told (objects re-read, objects to re-read) after each."""
    result = FixityResult(mode=f"sample {sample}" if sample is not None else "all")
    listed = {o.key: o for o in repository.list("")}
    result.objects_listed = len(listed)
    packages = list(expected_packages(ledger))
    result.packages = len(packages)
    chosen = set(range(len(packages)))
    if sample is not None and sample < len(packages):
        chosen = set((rng or random.SystemRandom()).sample(range(len(packages)), sample))
    expected_keys: set[str] = set()
    to_read: list[Expected] = []
    kept, gone, destroying = expected_destroyed(ledger)
    result.destroyed = len({e.what for e in kept})
    for i, (_code, objects) in enumerate(packages):
        if i in chosen:
            result.packages_read += 1
        for exp in objects:
            expected_keys.add(exp.key)
            being_destroyed = exp.key.startswith(tuple(destroying)) and exp.key.rsplit("/", 1)[-1] not in KEPT_FILES
            if exp.key not in listed and being_destroyed:
                continue  # deleted by a destruction that a crash interrupted: `disposition destroy` ends it
            if exp.key not in listed:
                result.findings.append(_not_listed(repository, exp))
            elif i in chosen:
                to_read.append(exp)
    expected_keys |= {prefix + TOMBSTONE for prefix in destroying}  # stored first by a destruction under way
    for key in sorted(gone & set(listed)):
        expected_keys.add(key)
        result.findings.append(Finding("A-DESTRUCTION-OUTSTANDING", key,
                                       "the record was destroyed, yet this document is still stored"))
    for exp in [*kept, *expected_others(ledger)]:
        expected_keys.add(exp.key)
        if exp.key not in listed:
            result.findings.append(_not_listed(repository, exp))
        else:
            to_read.append(exp)
    result.objects_expected = len(expected_keys)
    for done, exp in enumerate(to_read, 1):
        _read(repository, exp, result)
        if progress is not None:
            progress(done, len(to_read))
    busy = tuple(p.rstrip("/") + "/" for p in _in_progress(ledger))
    for key, obj in sorted(listed.items()):
        if key not in expected_keys and not key.startswith(busy):
            result.findings.append(Finding("A-OBJECT-UNEXPECTED", key,
                                           f"{obj.size} bytes that no event of the ledger records"))
    return result


def record_fixity(ledger: Ledger, repository: Repository, settings: Settings, result: FixityResult) -> int:
    """The result as a `fixity-checked` event, then a checkpoint; returns the event's seq."""
    payload = {k: v for k, v in result.to_dict().items() if k not in ("findings", "repaired")}
    payload["repaired"] = [f.where for f in result.repaired[:FINDINGS_LOGGED]]
    payload["findings"] = [{"code": f.code, "key": f.where} for f in result.findings[:FINDINGS_LOGGED]]
    with ledger.transaction() as s:
        ev = chain.append_event(s, "fixity-checked", payload=payload)
        seq = ev.seq
    checkpoint_now(ledger, repository, settings, run_id=None, reason="fixity")
    return seq
