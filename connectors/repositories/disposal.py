"""What a repository does after the transfer: report and set an object's lock, delete a destroyed
record's content, and repair an object from another copy. The two mixins give `FilesystemRepository`
and `S3ObjectRepository` these methods without growing their modules.

These are the only calls that remove or replace archive bytes, and each has one narrow caller:
`delete` the destruction of a record whose appraisal was approved (custody/destruction.py), and
`restore` the fixity repair with bytes whose digests match the ledger (custody/repair.py). The
store's own protection is respected, never bypassed: on S3 an object under retention or a legal
hold is refused before anything is sent (and the store would refuse too); no governance bypass.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.repositories.base import RepositoryError, StoredObject, VerificationFailed, repository_error
from guidang_io.block_reads import sha256_file


def retain_until_datetime(value: object) -> datetime:
    """The store's retain-until for a disposition date (s3_verify's rule, importable without boto3)."""
    from connectors.repositories.s3_verify import retain_until_datetime as rule

    return rule(value)


@dataclass(frozen=True, slots=True)
class LockState:
    """An object's protection as the store reports it (a filesystem reports none)."""

    retain_until: datetime | None = None
    legal_hold: bool = False

    def blocks_deletion(self, now: datetime | None = None) -> str | None:
        """Why the object may not be deleted now (None: it may)."""
        if self.legal_hold:
            return "legal hold"
        if self.retain_until is not None and self.retain_until > (now or datetime.now(UTC)):
            return f"retained until {self.retain_until.isoformat()}"
        return None


def locked(key: str, why: str, state: LockState) -> RepositoryError:
    return repository_error(RepositoryError, "REPO-LOCKED", key, f"cannot delete: {why}",
                            legal_hold=state.legal_hold,
                            retain_until=state.retain_until.isoformat() if state.retain_until else None)


def spool(chunks: Iterable[bytes], folder: Path | None = None) -> tuple[Path, str, int]:
    """The chunks in a temporary file (never all in memory); returns (path, SHA-256, size)."""
    fd, name = tempfile.mkstemp(prefix=".guidang-tmp-restore-", dir=folder)
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    sha, size = sha256_file(Path(name))
    return Path(name), sha, size


class FsDisposal:
    """The filesystem's side: no lock of its own (the ledger's holds are what protect a record)."""

    root: Path
    if TYPE_CHECKING:  # provided by FilesystemRepository
        def _path(self, key: str) -> Path: ...

        def _os_error(self, exc: OSError, where: str, action: str) -> RepositoryError: ...

        def _sync_folder(self, folder: Path) -> None: ...

    def lock_state(self, key: str) -> LockState:
        return LockState()

    def set_legal_hold(self, key: str, on: bool) -> bool:
        """False: a filesystem has no legal hold to set."""
        return False

    def extend_retention(self, key: str, until: date) -> bool:
        return False

    def delete(self, key: str) -> bool:
        """Remove the object (True), or find it gone already (False): a resumed destruction repeats it."""
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._os_error(exc, key, "cannot delete") from exc
        self._sync_folder(path.parent)
        return True

    def restore(self, key: str, chunks: Iterable[bytes], sha256: str, *, retain_until: object | None = None,
                legal_hold: bool = False) -> StoredObject:
        """Put bytes whose SHA-256 is `sha256` under `key`, replacing a changed object: written beside it,
        read back, made read-only, renamed over it, the folder synced."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp, found, size = spool(chunks, path.parent)
        except OSError as exc:
            raise self._os_error(exc, key, "cannot write the repaired copy") from exc
        try:
            if found != sha256.lower():
                raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                       f"the copy to restore hashes to {found}, not {sha256.lower()}")
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except OSError as exc:
            raise self._os_error(exc, key, "cannot put the repaired copy in place") from exc
        finally:
            tmp.unlink(missing_ok=True)
        self._sync_folder(path.parent)
        return StoredObject(key, size, found)


class S3Disposal:
    """The S3 side: Object Lock reported and set per object; deletion removes every version."""

    bucket: str
    _bucket: Any
    _lock: Any
    _checks: Any
    if TYPE_CHECKING:  # provided by S3ObjectRepository
        def _full(self, key: str) -> str: ...

    def lock_state(self, key: str) -> LockState:
        head = self._bucket.head(self._full(key)) or {}
        return LockState(head.get("ObjectLockRetainUntilDate"), head.get("ObjectLockLegalHoldStatus") == "ON")

    def _call(self, op: str, full: str, call: Any, **params: Any) -> Any:
        try:
            return call(Bucket=self.bucket, Key=full, **params)
        except Exception as exc:
            raise self._bucket.error(exc, self._bucket.where(full), op) from exc

    def set_legal_hold(self, key: str, on: bool) -> bool:
        """Set or clear the object's legal hold (True), read back; False without Object Lock."""
        if not self._lock.enabled():
            return False
        full = self._full(key)
        self._call("PutObjectLegalHold", full, self._bucket.client.put_object_legal_hold,
                   LegalHold={"Status": "ON" if on else "OFF"})
        if self.lock_state(key).legal_hold != on:
            raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                   f"legal hold still {'OFF' if on else 'ON'} after setting it")
        return True

    def extend_retention(self, key: str, until: date) -> bool:
        """Move retain-until later (never earlier: S3 refuses that in COMPLIANCE mode anyway)."""
        state = self.lock_state(key)
        target = retain_until_datetime(until)
        if state.retain_until is None or state.retain_until >= target:
            return False
        mode = self._bucket.head(self._full(key)).get("ObjectLockMode") or "COMPLIANCE"
        self._call("PutObjectRetention", self._full(key), self._bucket.client.put_object_retention,
                   Retention={"Mode": mode, "RetainUntilDate": target})
        return True

    def delete(self, key: str) -> bool:
        """Delete every version of the object (a versioned bucket's delete marker alone would keep the
        bytes); refused while retained or on legal hold. False when nothing was there."""
        full = self._full(key)
        state = self.lock_state(key)
        why = state.blocks_deletion()
        if why:
            raise locked(key, why, state)
        client = self._bucket.client
        try:
            listing = client.list_object_versions(Bucket=self.bucket, Prefix=full)
        except Exception as exc:
            raise self._bucket.error(exc, self._bucket.where(full), "ListObjectVersions") from exc
        versions = [v for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []) if v["Key"] == full]
        for v in listing.get("Versions", []):  # every version's own lock first: none deleted if one is kept
            if v["Key"] != full or v.get("VersionId") in (None, "null"):  # unversioned: the HEAD above was it
                continue
            head = self._call("HeadObject", full, client.head_object, VersionId=v["VersionId"])
            older = LockState(head.get("ObjectLockRetainUntilDate"), head.get("ObjectLockLegalHoldStatus") == "ON")
            why = older.blocks_deletion()
            if why:
                raise locked(key, f"version {v['VersionId']}: {why}", older)
        for v in versions:
            self._call("DeleteObject", full, client.delete_object, VersionId=v["VersionId"])
        if not versions:  # an unversioned store lists none: a plain delete
            if self._bucket.head(full) is None:
                return False
            self._call("DeleteObject", full, client.delete_object)
        return True

    def restore(self, key: str, chunks: Iterable[bytes], sha256: str, *, retain_until: object | None = None,
                legal_hold: bool = False) -> StoredObject:
        """A new version with the right bytes over a changed one (the changed version stays behind, locked
        as it was), or the object written again where it is missing; verified like every put."""
        from connectors.repositories.s3_client import META_SHA256, hex_to_b64

        full = self._full(key)
        tmp, found, size = spool(chunks)
        try:
            if found != sha256.lower():
                raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                       f"the copy to restore hashes to {found}, not {sha256.lower()}")
            lock = self._lock.params(key, retain_until, legal_hold)
            with tmp.open("rb") as body:
                self._call("PutObject", full, self._bucket.client.put_object, Body=body, ChecksumAlgorithm="SHA256",
                           ChecksumSHA256=hex_to_b64(found), Metadata={META_SHA256: found}, **lock)
            return self._checks.check(key, full, found, size, None, self._bucket.head(full) or {}, full_read=True)
        finally:
            tmp.unlink(missing_ok=True)
