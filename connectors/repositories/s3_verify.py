"""What makes a stored S3 object trustworthy after the write: its size and checksums as HEAD reports
them, a full re-read for a deterministic sample (`verify_sample_rate`), and its Object Lock.

HEAD must report our size and checksum (single-part: the store's SHA-256; multipart: the
composite SHA-256 of the part digests, plus our x-amz-meta-sha256). Stores that do not check
checksums (moto among them) keep whatever they were sent, so where HEAD proves nothing, or the key
is sampled, the bytes are streamed back and re-hashed. Retention is only ever extended, never
shortened; a lock the upload asked for but the store dropped is set afterwards and read back.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.repositories.base import (
    ObjectNotFound,
    RepositoryError,
    StoredObject,
    VerificationFailed,
    repository_error,
)
from connectors.repositories.s3_client import META_SHA256, S3Bucket, b64, error_code, hex_to_b64, is_multipart, status
from connectors.retry import Backoff, Transient, transient_only, with_retries

log = logging.getLogger(__name__)

_NO_LOCK_CODES = {"ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound",
                  "NotImplemented", "InvalidRequest"}
VERIFY_BACKOFF_SECONDS = 0.2  # between HEADs of a fresh object, and between read-backs


def retain_until_datetime(value: object) -> datetime:
    """The ObjectLockRetainUntilDate for a disposition date (or an aware datetime).

    A date D keeps the object locked through the whole of D wherever it is read: until 00:00 UTC
    on D+1 (08:00 on D+1 in Asia/Shanghai). Naive datetimes are refused: a lock that lands eight
    hours early or late is not something to guess about.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise repository_error(RepositoryError, "REPO-LOCK-INVALID", "retain_until",
                                   f"{value.isoformat()} has no time zone; pass a date or an aware datetime")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), dtime(0), tzinfo=UTC)
    raise repository_error(RepositoryError, "REPO-LOCK-INVALID", "retain_until",
                           f"expected a date or datetime, got {type(value).__name__}")


class ObjectLock:
    """The bucket's Object Lock: whether it has one, the lock an upload asks for, and making sure
    the lock is in place."""

    def __init__(self, bucket: S3Bucket, mode: str | None) -> None:
        self._bucket = bucket
        self._mode = mode  # GOVERNANCE or COMPLIANCE, from the repository config
        self._enabled: bool | None = None

    def enabled(self) -> bool:
        """Whether the bucket has Object Lock; asked once."""
        if self._enabled is None:
            bucket = self._bucket
            bucket.ensure()
            try:
                r = bucket.client.get_object_lock_configuration(Bucket=bucket.name)
                enabled = (r.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError as exc:
                if error_code(exc) not in _NO_LOCK_CODES and status(exc) != 501:
                    raise bucket.error(exc, bucket.where(), "GetObjectLockConfiguration") from exc
                enabled = False
            except BotoCoreError as exc:
                raise bucket.error(exc, bucket.where(), "GetObjectLockConfiguration") from exc
            self._enabled = enabled
        return self._enabled

    def params(self, key: str, retain_until: object | None, legal_hold: bool) -> dict[str, Any]:
        """The ObjectLock* parameters of a write; refused before anything is sent when they cannot hold."""
        if retain_until is None and not legal_hold:
            return {}
        if not self.enabled():
            raise repository_error(RepositoryError, "REPO-NO-OBJECT-LOCK", key,
                                   f"bucket {self._bucket.name!r} has no Object Lock, so "
                                   f"{'a legal hold' if legal_hold else 'a retention date'} cannot be set; "
                                   "use a bucket created with Object Lock enabled")
        params: dict[str, Any] = {}
        if retain_until is not None:
            if self._mode is None:
                raise repository_error(RepositoryError, "REPO-LOCK-INVALID", key,
                                       "retain_until given but the repository config has no object_lock_mode "
                                       "(GOVERNANCE or COMPLIANCE)")
            until = retain_until_datetime(retain_until)
            if until <= datetime.now(UTC):
                raise repository_error(RepositoryError, "REPO-LOCK-INVALID", key,
                                       f"retain_until {until.isoformat()} is in the past")
            params["ObjectLockMode"] = self._mode
            params["ObjectLockRetainUntilDate"] = until
        if legal_hold:
            params["ObjectLockLegalHoldStatus"] = "ON"
        return params

    @staticmethod
    def _missing(head: dict[str, Any], lock: dict[str, Any]) -> list[str]:
        missing = []
        if "ObjectLockMode" in lock:
            until = head.get("ObjectLockRetainUntilDate")
            if head.get("ObjectLockMode") != lock["ObjectLockMode"] or until is None \
                    or until < lock["ObjectLockRetainUntilDate"]:
                missing.append("retention")
        if lock.get("ObjectLockLegalHoldStatus") == "ON" and head.get("ObjectLockLegalHoldStatus") != "ON":
            missing.append("legal hold")
        return missing

    def ensure(self, key: str, full: str, head: dict[str, Any], lock: dict[str, Any]) -> None:
        """Check the lock the upload asked for is in place; set it where the store dropped it.

        Some stores ignore the lock headers of CreateMultipartUpload (moto among them), and an
        object from a run that crashed before this point has none: both get it set here, and the
        result is read back.
        """
        missing = self._missing(head, lock)
        if not missing:
            return
        bucket = self._bucket
        log.warning("%s: %s not set by the upload; setting it now", bucket.where(full), " and ".join(missing))
        try:
            if "retention" in missing:
                bucket.client.put_object_retention(
                    Bucket=bucket.name, Key=full,
                    Retention={"Mode": lock["ObjectLockMode"], "RetainUntilDate": lock["ObjectLockRetainUntilDate"]})
            if "legal hold" in missing:
                bucket.client.put_object_legal_hold(Bucket=bucket.name, Key=full, LegalHold={"Status": "ON"})
        except (ClientError, BotoCoreError) as exc:
            raise bucket.error(exc, bucket.where(full), "PutObjectRetention/LegalHold") from exc
        after = bucket.head(full) or {}
        still = self._missing(after, lock)
        if still:
            raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                   f"Object Lock not in place after setting it: {' and '.join(still)}",
                                   check="object lock", missing=still)


class Verification:
    """The checks of one repository: `sample_rate` of the objects are re-read in full (1.0 = all),
    `attempts` HEADs wait for a fresh object and `attempts` read-backs may disagree."""

    def __init__(self, bucket: S3Bucket, lock: ObjectLock, *, sample_rate: float, attempts: int) -> None:
        self._bucket = bucket
        self._lock = lock
        self._sample_rate = sample_rate
        self._backoff = Backoff(max(1, attempts), VERIFY_BACKOFF_SECONDS)

    def written(self, key: str, full: str, sha256: str, size: int, part_digests: list[bytes] | None,
                lock: dict[str, Any]) -> StoredObject:
        """The object just written, checked and locked; HEAD is repeated for stores with eventual
        read-after-write consistency."""

        def look() -> dict[str, Any]:
            head = self._bucket.head(full)
            if head is None:
                raise Transient("not there yet")
            return head

        def give_up(_reason: str, _exc: Exception) -> VerificationFailed:
            return repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                    "the object is not there after a successful write")

        head = with_retries(look, self._backoff, what=f"{self._bucket.where(full)}: HEAD after writing",
                            transient=transient_only, give_up=give_up)
        return self.accept(key, full, sha256, size, part_digests, head, lock)

    def accept(self, key: str, full: str, sha256: str, size: int, part_digests: list[bytes] | None,
               head: dict[str, Any], lock: dict[str, Any]) -> StoredObject:
        """`check`, then make sure the lock is in place (a re-run after a crash may find an object
        that was written but never verified or locked)."""
        stored = self.check(key, full, sha256, size, part_digests, head)
        self._lock.ensure(key, full, head, lock)
        return stored

    def check(self, key: str, full: str, sha256: str, size: int, part_digests: list[bytes] | None,
              head: dict[str, Any], *, full_read: bool = False) -> StoredObject:
        """Compare what HEAD reports, then (sampled, or when HEAD proved nothing) re-hash the bytes."""
        def fail(what: str, expected: object, found: object) -> VerificationFailed:
            return repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                    f"{what}: expected {expected}, store has {found}",
                                    check=what, expected=expected, found=found)

        stored_size = int(head["ContentLength"])
        if stored_size != size:
            raise fail("size", size, stored_size)
        meta = (head.get("Metadata") or {}).get(META_SHA256)
        if meta is not None and meta.lower() != sha256:
            raise fail("x-amz-meta-sha256", sha256, meta)
        checksum = head.get("ChecksumSHA256")
        checksum_checked = False
        if checksum and not is_multipart(head):
            if checksum != hex_to_b64(sha256):
                raise fail("stored SHA-256 checksum", hex_to_b64(sha256), checksum)
            checksum_checked = True
        elif checksum and part_digests is not None:
            # Composite: SHA-256 over the concatenated part digests, "-<parts>" on AWS (moto omits it).
            composite = b64(hashlib.sha256(b"".join(part_digests)).digest())
            base, _, count = checksum.partition("-")
            if base != composite or (count and int(count) != len(part_digests)):
                raise fail("stored composite SHA-256 checksum", f"{composite}-{len(part_digests)}", checksum)
            checksum_checked = True
        # No stored checksum we could compare (a store that keeps none, or a multipart object from
        # an earlier run whose part digests we no longer know): then the bytes must be read.
        if full_read or not checksum_checked or self._sampled(key):
            self._rehash(key, full, sha256, size)
        return StoredObject(key, size, sha256)

    def _sampled(self, key: str) -> bool:
        """Deterministic from the key, so a re-run re-reads the same objects and a test can predict it."""
        rate = self._sample_rate
        if rate >= 1:
            return True
        if rate <= 0:
            return False
        return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64 < rate

    def _rehash(self, key: str, full: str, sha256: str, size: int) -> None:
        """Stream the object back and hash it; retried, because a read can break off or be damaged in transit."""
        found: list[str] = []

        def read_back() -> None:
            d = self._bucket.hash_object(full)
            if d.sha256 != sha256 or d.size != size:
                found.append(f"{d.sha256} ({d.size} bytes)")
                raise Transient(f"read back {found[-1]}")

        def transient(exc: Exception) -> str | None:
            if isinstance(exc, RepositoryError) and not isinstance(exc, ObjectNotFound):
                return str(exc)
            return transient_only(exc)

        def give_up(_reason: str, exc: Exception) -> Exception:
            if not found:  # every read failed: that failure is the news, not a mismatch
                return exc
            return repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                    f"read back {len(found)} time(s), SHA-256 never matched {sha256} ({size} bytes): "
                                    f"{'; '.join(found)}", check="re-hash", expected=sha256, found=found)

        with_retries(read_back, self._backoff, what=f"{self._bucket.where(full)}: read-back",
                     transient=transient, give_up=give_up)
