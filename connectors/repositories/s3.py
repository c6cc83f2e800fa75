"""The S3 archive repository: any S3-compatible store through boto3 (AWS, MinIO, Ceph RGW, OSS, moto).

What makes a stored object trustworthy here, in order:
1. the local file is hashed (schemas.digest, one streaming pass) and must match the digest the
   packager recorded, before anything is sent;
2. every PUT carries `x-amz-checksum-sha256` (per part for multipart uploads, `s3_multipart`), so
   a store that checks checksums refuses damaged uploads, and our SHA-256 goes along as
   `x-amz-meta-sha256` (the only full-object SHA-256 a multipart object can carry: its stored
   checksum is composite);
3. after writing, `head_object(ChecksumMode=ENABLED)` must report our size and checksum, and a
   deterministic sample of objects (`verify_sample_rate`, 1.0 = all) is re-read in full and
   re-hashed (`s3_verify`, which also sees to the Object Lock). Stores that do not check
   checksums (moto among them) are caught by this last step.

Never overwrite: a HEAD first (an existing object with our digest is verified and returned; one
with another digest is a conflict), then the write itself is conditional (`If-None-Match: *`), so
two writers racing for one key cannot replace each other. Where a store answers that it does not
implement conditional writes, the repository logs it once and relies on the HEAD alone. The
client, its settings and the translation of boto errors are `s3_client`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from connectors.repositories.base import (
    ObjectVersion,
    RepositoryError,
    StoredObject,
    check_key,
    check_list_prefix,
    conflict,
    not_found,
    repository_error,
    source_changed,
    unreadable_source,
)
from connectors.repositories.disposal import S3Disposal
from connectors.repositories.s3_client import META_SHA256, S3Bucket, hex_to_b64, stored_sha256
from connectors.repositories.s3_multipart import (
    DEFAULT_PART_SIZE,
    MIB,
    MIN_PART_SIZE,
    sweep_uploads,
    upload_multipart,
)
from connectors.repositories.s3_verify import ObjectLock, Verification, retain_until_datetime
from guidang_io.block_reads import sha256_file
from schemas.config import S3Repository
from schemas.digest import sha256_bytes
from schemas.layout import is_dangerous_path

__all__ = ["DEFAULT_PART_SIZE", "MIN_PART_SIZE", "S3ObjectRepository", "retain_until_datetime"]


class S3ObjectRepository(S3Disposal):
    """Archive objects in `bucket` under `prefix`; see the module docstring for what is checked when.

    The credentials need s3:GetObject, s3:PutObject, s3:ListBucket (HEAD of a missing key answers
    403 without it), s3:AbortMultipartUpload, s3:GetBucketObjectLockConfiguration and, for locks,
    s3:PutObjectRetention and s3:PutObjectLegalHold.
    """

    def __init__(self, config: S3Repository, *, max_attempts: int = 5, part_size: int = DEFAULT_PART_SIZE,
                 connect_timeout: float = 10.0, read_timeout: float = 60.0, verify_attempts: int = 3) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part)")
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix.strip("/") + "/" if config.prefix.strip("/") else ""
        if self.prefix and is_dangerous_path(self.prefix.rstrip("/")):
            raise repository_error(RepositoryError, "REPO-UNSAFE-KEY", repr(config.prefix), "refused prefix")
        self.multipart_threshold = config.multipart_threshold_mb * MIB
        self.part_size = part_size
        self.max_attempts = max_attempts
        self.verify_attempts = max(1, verify_attempts)
        self._bucket = S3Bucket(config, max_attempts=max_attempts, connect_timeout=connect_timeout,
                                read_timeout=read_timeout)
        self._lock = ObjectLock(self._bucket, config.object_lock_mode)
        self._checks = Verification(self._bucket, self._lock, sample_rate=config.verify_sample_rate,
                                    attempts=self.verify_attempts)

    def __repr__(self) -> str:
        return f"S3ObjectRepository(s3://{self.bucket}/{self.prefix}, endpoint={self._bucket.endpoint})"

    @property
    def _conditional_writes(self) -> bool:
        """False once the store has answered that it has no `If-None-Match` (then HEAD alone guards)."""
        return self._bucket.conditional_writes

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock; asked once per repository."""
        return self._lock.enabled()

    # -- reading --------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        check_key(key)
        return self.prefix + key

    def _head(self, full: str) -> dict[str, Any] | None:
        return self._bucket.head(full)

    def exists(self, key: str) -> bool:
        return self._head(self._full(key)) is not None

    def head(self, key: str) -> StoredObject | None:
        """Size and SHA-256 as stored (single-part: the store's checksum; multipart: x-amz-meta-sha256)."""
        r = self._head(self._full(key))
        if r is None:
            return None
        return StoredObject(key, int(r["ContentLength"]), stored_sha256(r))

    def open(self, key: str) -> Iterator[bytes]:
        return self._bucket.open(self._full(key))

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Objects whose key starts with `prefix`, in the store's key order (UTF-8 binary = sorted)."""
        check_list_prefix(prefix)
        self._bucket.ensure()
        paginator = self._bucket.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"][len(self.prefix):], int(item["Size"]), None)
        except (ClientError, BotoCoreError) as exc:
            raise self._bucket.error(exc, self._bucket.where(self.prefix + prefix), "ListObjectsV2") from exc

    def history(self, prefix: str) -> Iterator[ObjectVersion]:
        """Every version and delete marker under `prefix`: what a DELETE or an overwrite left behind
        in a bucket that keeps versions (Object Lock needs versioning), for the audit to read."""
        check_list_prefix(prefix)
        self._bucket.ensure()
        paginator = self._bucket.client.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item, marker in [(v, False) for v in page.get("Versions", [])] + [
                        (m, True) for m in page.get("DeleteMarkers", [])]:
                    yield ObjectVersion(item["Key"][len(self.prefix):], str(item.get("VersionId") or "null"),
                                        bool(item.get("IsLatest")), marker)
        except (ClientError, BotoCoreError) as exc:
            raise self._bucket.error(exc, self._bucket.where(self.prefix + prefix), "ListObjectVersions") from exc

    def open_version(self, key: str, version_id: str) -> Iterator[bytes]:
        """One version's bytes, in blocks (`history` names them)."""
        full = self._full(key)
        self._bucket.ensure()
        try:
            body = self._bucket.client.get_object(Bucket=self.bucket, Key=full, VersionId=version_id)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise self._bucket.error(exc, self._bucket.where(full), "GetObject") from exc
        return self._bucket.stream(full, body)

    def verify(self, key: str, sha256: str) -> StoredObject:
        """Full check of one stored object whatever the sample rate: the fixity audit's call."""
        full = self._full(key)
        r = self._head(full)
        if r is None:
            raise not_found(self._bucket.where(full))
        return self._checks.check(key, full, sha256.lower(), int(r["ContentLength"]), None, r, full_read=True)

    # -- writing --------------------------------------------------------------------------------

    def make_durable(self, local_paths: Iterable[Path]) -> None:
        """An upload copies the file: nothing local needs to be durable first (see fs `make_durable`)."""

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Each S3 write is durable when the store answers it: nothing to defer (see fs `batch`)."""
        yield

    def put_file(self, key: str, local_path: Path, sha256: str, *, retain_until: object | None = None,
                 legal_hold: bool = False, consume: bool = False) -> StoredObject:
        """Store a local file (multipart above multipart_threshold_mb), verify it, return what is stored.

        `consume` is the filesystem repository's (a handed-over file may be linked); an upload is a copy."""
        full = self._full(key)
        sha256 = sha256.lower()
        local_path = Path(local_path)
        try:
            local_sha256, local_size = sha256_file(local_path)
        except OSError as exc:
            raise unreadable_source(local_path, key, exc) from exc
        if local_sha256 != sha256:
            raise source_changed(key, str(local_path), local_sha256, sha256)

        def write(lock: dict[str, Any]) -> tuple[bool, list[bytes] | None]:
            if local_size > self.multipart_threshold:
                part_digests = upload_multipart(self._bucket, key, full, local_path, sha256, local_size, lock,
                                                part_size=self.part_size)
                return part_digests is not None, part_digests
            with local_path.open("rb") as fh:
                return self._put(full, fh, sha256, lock), None

        return self._store(key, full, sha256, local_size, self._lock.params(key, retain_until, legal_hold), write)

    def put_bytes(self, key: str, data: bytes, *, retain_until: object | None = None,
                  legal_hold: bool = False) -> StoredObject:
        full = self._full(key)
        sha256 = sha256_bytes(data)
        return self._store(key, full, sha256, len(data), self._lock.params(key, retain_until, legal_hold),
                           lambda lock: (self._put(full, data, sha256, lock), None))

    def _store(self, key: str, full: str, sha256: str, size: int, lock: dict[str, Any],
               write: Callable[[dict[str, Any]], tuple[bool, list[bytes] | None]]) -> StoredObject:
        """The order both puts follow: HEAD (an object already there is verified, or a conflict), the
        conditional write (`write` says whether it wrote, and the part digests of a multipart one),
        then verification of what was written."""
        existing = self._existing(key, full, sha256, lock)
        if existing is not None:
            return existing
        written, part_digests = write(lock)
        if not written:
            return self._taken(key, full, sha256, lock)
        return self._checks.written(key, full, sha256, size, part_digests, lock)

    def _existing(self, key: str, full: str, sha256: str, lock: dict[str, Any]) -> StoredObject | None:
        """None when the key is free; the verified object when it holds these bytes; else a conflict."""
        r = self._head(full)
        if r is None:
            return None
        stored = stored_sha256(r)
        if stored is None:  # written by something else without a checksum: hash it
            stored = self._bucket.hash_object(full).sha256
        if stored != sha256:
            raise conflict(key, stored, sha256)
        return self._checks.accept(key, full, sha256, int(r["ContentLength"]), None, r, lock)

    def _taken(self, key: str, full: str, sha256: str, lock: dict[str, Any]) -> StoredObject:
        """Our conditional write lost to another writer (or to our own earlier, unanswered attempt)."""
        existing = self._existing(key, full, sha256, lock)
        if existing is None:
            raise repository_error(RepositoryError, "REPO-S3-ERROR", self._bucket.where(full),
                                   "the store refused the write as a conflict, but no object is there")
        return existing

    def _put(self, full: str, body: bytes | BinaryIO, sha256: str, lock: dict[str, Any]) -> bool:
        """One PUT; False when a conditional write found the key taken."""
        params: dict[str, Any] = {
            "Bucket": self.bucket, "Key": full, "Body": body,
            "ChecksumAlgorithm": "SHA256", "ChecksumSHA256": hex_to_b64(sha256),
            "Metadata": {META_SHA256: sha256}, **lock,
        }
        rewind = None if isinstance(body, bytes) else (lambda: body.seek(0))
        return self._bucket.conditional_write("PutObject", self._bucket.client.put_object, params, full,
                                              rewind=rewind)

    # -- housekeeping ---------------------------------------------------------------------------

    def sweep_temporary(self, older_than_seconds: float = 86400.0) -> list[str]:
        """Abort incomplete multipart uploads under our prefix started more than that long ago.

        They are the S3 counterpart of the filesystem's temporary leftovers: a process killed during
        an upload, or a CreateMultipartUpload whose answer was lost so we never knew its id. The
        default age (a day) keeps uploads of large files in progress elsewhere alive. Returns the
        keys whose uploads were aborted.
        """
        return sweep_uploads(self._bucket, self.prefix, older_than_seconds)
