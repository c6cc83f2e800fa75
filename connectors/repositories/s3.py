"""The S3 archive repository: any S3-compatible store through boto3 (AWS, MinIO, Ceph RGW, OSS, moto).

What makes a stored object trustworthy here, in order:
1. the local file is hashed (schemas.digest, one streaming pass) and must match the digest the
   packager recorded, before anything is sent;
2. every PUT carries `x-amz-checksum-sha256` (per part for multipart uploads), so a store that
   checks checksums refuses damaged uploads, and our SHA-256 goes along as `x-amz-meta-sha256`
   (the only full-object SHA-256 a multipart object can carry: its stored checksum is composite);
3. after writing, `head_object(ChecksumMode=ENABLED)` must report our size and checksum (for
   multipart: the composite SHA-256 of the part digests, plus our metadata digest), and a
   deterministic sample of objects (`verify_sample_rate`, 1.0 = all) is re-read in full and
   re-hashed. Stores that do not check checksums (moto among them) are caught by this last step.

Never overwrite: a HEAD first (an existing object with our digest is verified and returned; one
with another digest is a conflict), then the write itself is conditional (`If-None-Match: *`), so
two writers racing for one key cannot replace each other. Where a store answers that it does not
implement conditional writes, the repository logs it once and relies on the HEAD alone.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from connectors.repositories.base import (
    ObjectNotFound,
    RepositoryConflict,
    RepositoryError,
    StoredObject,
    VerificationFailed,
    check_key,
    repository_error,
)
from schemas.config import S3Repository
from schemas.digest import BLOCK_SIZE, Digests, MultiHasher, digest_file
from schemas.layout import is_dangerous_path

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
META_SHA256 = "sha256"  # sent as x-amz-meta-sha256

_ACCESS_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                 "InvalidToken", "ExpiredToken", "AccountProblem"}
_TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
                    "ThrottlingException", "RequestLimitExceeded", "OperationAborted"}
_NO_LOCK_CODES = {"ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound",
                  "NotImplemented", "InvalidRequest"}
_MULTIPART_ETAG = re.compile(r'-\d+"?$')


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _hex_to_b64(hex_digest: str) -> str:
    return _b64(bytes.fromhex(hex_digest))


def _b64_to_hex(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _is_multipart(head: dict[str, Any]) -> bool:
    checksum = head.get("ChecksumSHA256") or ""
    return (head.get("ChecksumType") == "COMPOSITE" or "-" in checksum
            or bool(_MULTIPART_ETAG.search(head.get("ETag") or "")))


def _stored_sha256(head: dict[str, Any]) -> str | None:
    """The full-object SHA-256 the store holds: its own checksum when single-part, else our metadata."""
    checksum = head.get("ChecksumSHA256")
    if checksum and not _is_multipart(head):
        return _b64_to_hex(checksum)
    meta = (head.get("Metadata") or {}).get(META_SHA256, "").lower()
    return meta if re.fullmatch(r"[0-9a-f]{64}", meta) else None


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


class S3ObjectRepository:
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
        self._client = self._make_client(connect_timeout, read_timeout)
        self._bucket_checked = False
        self._lock_enabled: bool | None = None
        self._conditional_writes = True

    def __repr__(self) -> str:
        return f"S3ObjectRepository(s3://{self.bucket}/{self.prefix}, endpoint={self._endpoint()})"

    def _endpoint(self) -> str:
        return self.config.endpoint_url or "AWS"

    def _make_client(self, connect_timeout: float, read_timeout: float) -> Any:
        cfg = self.config
        creds: dict[str, str] = {}
        if cfg.access_key_id_env or cfg.secret_access_key_env:
            names = [cfg.access_key_id_env, cfg.secret_access_key_env]
            if not all(names):
                raise repository_error(RepositoryError, "REPO-NO-CREDENTIALS", f"s3://{self.bucket}",
                                       "set both access_key_id_env and secret_access_key_env, or neither")
            missing = [n for n in names if n and not os.environ.get(n)]
            if missing:
                # Only the variables' names: their values are secrets.
                raise repository_error(RepositoryError, "REPO-NO-CREDENTIALS", f"s3://{self.bucket}",
                                       f"environment variable(s) {', '.join(missing)} named in the "
                                       "repository config are not set")
            creds = {"aws_access_key_id": os.environ[names[0]],  # type: ignore[index]
                     "aws_secret_access_key": os.environ[names[1]]}  # type: ignore[index]
        session = boto3.session.Session(region_name=cfg.region, **creds)
        botocfg = Config(
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            signature_version="s3v4",
            # We send our own SHA-256 checksums; botocore's default CRC32 (and its aws-chunked
            # trailers) is not understood by every S3-compatible store.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # S3-compatible stores behind an endpoint URL mostly want path-style addressing.
            s3={"addressing_style": "path"} if cfg.endpoint_url else None,
        )
        return session.client("s3", endpoint_url=cfg.endpoint_url, config=botocfg)

    # -- errors ---------------------------------------------------------------------------------

    def _where(self, full_key: str | None = None) -> str:
        return f"s3://{self.bucket}/{full_key}" if full_key is not None else f"s3://{self.bucket}"

    def _error(self, exc: Exception, where: str, op: str) -> RepositoryError:
        """One translation of boto errors into coded RepositoryErrors, for every call."""
        if isinstance(exc, ClientError):
            code, status = _error_code(exc), _status(exc)
            msg = exc.response.get("Error", {}).get("Message", "")
            if code == "NoSuchBucket" or (op == "HeadBucket" and status == 404):
                return repository_error(RepositoryError, "REPO-NO-BUCKET", self._where(),
                                        f"bucket {self.bucket!r} does not exist at {self._endpoint()}")
            if code == "RequestTimeTooSkewed":
                return repository_error(RepositoryError, "REPO-CLOCK-SKEW", where,
                                        f"{op}: this machine's clock differs from the store's by more than "
                                        "it allows (usually 15 minutes); fix the time sync (NTP)")
            if code in _ACCESS_CODES or status == 403:
                return repository_error(RepositoryError, "REPO-ACCESS-DENIED", where,
                                        f"{op} refused ({code or status}): check the credentials "
                                        f"({self.config.access_key_id_env or 'default chain'}) and the "
                                        "bucket policy", s3_code=code, status=status)
            if status >= 500 or code in _TRANSIENT_CODES:
                return repository_error(RepositoryError, "REPO-TRANSIENT", where,
                                        f"{op} still failing after {self.max_attempts} attempts: "
                                        f"{code or status} {msg}".rstrip(), s3_code=code, status=status)
            return repository_error(RepositoryError, "REPO-S3-ERROR", where, f"{op}: {code or status} {msg}".rstrip(),
                                    s3_code=code, status=status)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return repository_error(RepositoryError, "REPO-NO-CREDENTIALS", where,
                                    f"{op}: no S3 credentials (set access_key_id_env/secret_access_key_env "
                                    "in the repository config, or configure boto3's default chain)")
        if isinstance(exc, ConnectionError | HTTPClientError):
            return repository_error(RepositoryError, "REPO-UNREACHABLE", where,
                                    f"{op}: cannot talk to {self._endpoint()} after {self.max_attempts} "
                                    f"attempts: {type(exc).__name__}")
        return repository_error(RepositoryError, "REPO-S3-ERROR", where, f"{op}: {type(exc).__name__}: {exc}")

    # -- bucket ---------------------------------------------------------------------------------

    def _ensure_bucket(self) -> None:
        """HEAD the bucket once, so a missing bucket or wrong credentials read as such, not as 404 keys."""
        if self._bucket_checked:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, self._where(), "HeadBucket") from exc
        self._bucket_checked = True

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock; asked once per repository."""
        if self._lock_enabled is None:
            self._ensure_bucket()
            try:
                r = self._client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = (r.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError as exc:
                if _error_code(exc) not in _NO_LOCK_CODES and _status(exc) != 501:
                    raise self._error(exc, self._where(), "GetObjectLockConfiguration") from exc
                enabled = False
            except BotoCoreError as exc:
                raise self._error(exc, self._where(), "GetObjectLockConfiguration") from exc
            self._lock_enabled = enabled
        return self._lock_enabled

    def _lock_params(self, key: str, retain_until: object | None, legal_hold: bool) -> dict[str, Any]:
        if retain_until is None and not legal_hold:
            return {}
        if not self.object_lock_enabled():
            raise repository_error(RepositoryError, "REPO-NO-OBJECT-LOCK", key,
                                   f"bucket {self.bucket!r} has no Object Lock, so "
                                   f"{'a legal hold' if legal_hold else 'a retention date'} cannot be set; "
                                   "use a bucket created with Object Lock enabled")
        params: dict[str, Any] = {}
        if retain_until is not None:
            if self.config.object_lock_mode is None:
                raise repository_error(RepositoryError, "REPO-LOCK-INVALID", key,
                                       "retain_until given but the repository config has no object_lock_mode "
                                       "(GOVERNANCE or COMPLIANCE)")
            until = retain_until_datetime(retain_until)
            if until <= datetime.now(UTC):
                raise repository_error(RepositoryError, "REPO-LOCK-INVALID", key,
                                       f"retain_until {until.isoformat()} is in the past")
            params["ObjectLockMode"] = self.config.object_lock_mode
            params["ObjectLockRetainUntilDate"] = until
        if legal_hold:
            params["ObjectLockLegalHoldStatus"] = "ON"
        return params

    # -- reading --------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        check_key(key)
        return self.prefix + key

    def _head(self, full: str) -> dict[str, Any] | None:
        self._ensure_bucket()
        try:
            return self._client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _status(exc) == 404 or _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise self._error(exc, self._where(full), "HeadObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, self._where(full), "HeadObject") from exc

    def exists(self, key: str) -> bool:
        return self._head(self._full(key)) is not None

    def head(self, key: str) -> StoredObject | None:
        """Size and SHA-256 as stored (single-part: the store's checksum; multipart: x-amz-meta-sha256)."""
        r = self._head(self._full(key))
        if r is None:
            return None
        return StoredObject(key, int(r["ContentLength"]), _stored_sha256(r))

    def _get(self, full: str) -> Any:
        self._ensure_bucket()
        try:
            return self._client.get_object(Bucket=self.bucket, Key=full)["Body"]
        except ClientError as exc:
            if _error_code(exc) == "NoSuchKey" or (_status(exc) == 404 and _error_code(exc) != "NoSuchBucket"):
                raise repository_error(ObjectNotFound, "REPO-NO-SUCH-KEY", self._where(full),
                                       "no such object") from exc
            raise self._error(exc, self._where(full), "GetObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, self._where(full), "GetObject") from exc

    def open(self, key: str) -> Iterator[bytes]:
        full = self._full(key)
        return self._stream(full, self._get(full))

    def _stream(self, full: str, body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(BLOCK_SIZE)
        except (BotoCoreError, OSError) as exc:
            raise repository_error(RepositoryError, "REPO-TRANSIENT", self._where(full),
                                   f"reading the object broke off: {type(exc).__name__}") from exc
        finally:
            body.close()

    def _hash_object(self, full: str) -> Digests:
        h = MultiHasher()
        for chunk in self._stream(full, self._get(full)):
            h.update(chunk)
        return h.digests()

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Objects whose key starts with `prefix`, in the store's key order (UTF-8 binary = sorted)."""
        folder_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if folder_part and is_dangerous_path(folder_part):
            raise repository_error(RepositoryError, "REPO-UNSAFE-KEY", repr(prefix), "refused list prefix")
        self._ensure_bucket()
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield StoredObject(item["Key"][len(self.prefix):], int(item["Size"]), None)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, self._where(self.prefix + prefix), "ListObjectsV2") from exc

    def verify(self, key: str, sha256: str) -> StoredObject:
        """Full check of one stored object whatever the sample rate: the fixity audit's call."""
        full = self._full(key)
        r = self._head(full)
        if r is None:
            raise repository_error(ObjectNotFound, "REPO-NO-SUCH-KEY", self._where(full), "no such object")
        return self._verify(key, full, sha256.lower(), int(r["ContentLength"]), None, r, full_read=True)

    # -- writing --------------------------------------------------------------------------------

    def put_file(self, key: str, local_path: Path, sha256: str, *, retain_until: object | None = None,
                 legal_hold: bool = False) -> StoredObject:
        """Store a local file (multipart above multipart_threshold_mb), verify it, return what is stored."""
        full = self._full(key)
        sha256 = sha256.lower()
        local_path = Path(local_path)
        try:
            local = digest_file(local_path)
        except OSError as exc:
            raise repository_error(RepositoryError, "REPO-IO", str(local_path),
                                   f"cannot read the file to store under {key}: {exc.strerror}") from exc
        if local.sha256 != sha256:
            raise repository_error(VerificationFailed, "REPO-SOURCE-CHANGED", key,
                                   f"{local_path} hashes to {local.sha256}, the packager recorded {sha256}",
                                   expected=sha256, found=local.sha256, source=str(local_path))
        lock = self._lock_params(key, retain_until, legal_hold)
        existing = self._existing(key, full, sha256, lock)
        if existing is not None:
            return existing
        part_digests: list[bytes] | None = None
        if local.size > self.multipart_threshold:
            part_digests = self._multipart(key, full, local_path, sha256, local.size, lock)
            written = part_digests is not None
        else:
            with local_path.open("rb") as fh:
                written = self._put(full, fh, sha256, lock)
        if not written:
            return self._taken(key, full, sha256, lock)
        return self._verify_written(key, full, sha256, local.size, part_digests, lock)

    def put_bytes(self, key: str, data: bytes, *, retain_until: object | None = None,
                  legal_hold: bool = False) -> StoredObject:
        full = self._full(key)
        h = MultiHasher()
        h.update(data)
        sha256 = h.digests().sha256
        lock = self._lock_params(key, retain_until, legal_hold)
        existing = self._existing(key, full, sha256, lock)
        if existing is not None:
            return existing
        if not self._put(full, data, sha256, lock):
            return self._taken(key, full, sha256, lock)
        return self._verify_written(key, full, sha256, len(data), None, lock)

    def _existing(self, key: str, full: str, sha256: str, lock: dict[str, Any]) -> StoredObject | None:
        """None when the key is free; the verified object when it holds these bytes; else a conflict."""
        r = self._head(full)
        if r is None:
            return None
        stored = _stored_sha256(r)
        if stored is None:  # written by something else without a checksum: hash it
            stored = self._hash_object(full).sha256
        if stored != sha256:
            raise repository_error(RepositoryConflict, "REPO-CONFLICT", key,
                                   f"already stored with SHA-256 {stored}; refusing to overwrite with {sha256}",
                                   stored_sha256=stored, new_sha256=sha256)
        # A re-run after a crash may find an object that was written but never verified (or locked).
        stored_object = self._verify(key, full, sha256, int(r["ContentLength"]), None, r)
        self._ensure_lock(key, full, r, lock)
        return stored_object

    def _taken(self, key: str, full: str, sha256: str, lock: dict[str, Any]) -> StoredObject:
        """Our conditional write lost to another writer (or to our own earlier, unanswered attempt)."""
        existing = self._existing(key, full, sha256, lock)
        if existing is None:
            raise repository_error(RepositoryError, "REPO-S3-ERROR", self._where(full),
                                   "the store refused the write as a conflict, but no object is there")
        return existing

    def _conditional_unsupported(self, exc: ClientError) -> bool:
        code, status = _error_code(exc), _status(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) + str(exc.response.get("Error", {}))
        if status == 501 or code == "NotImplemented":
            return True
        return code in {"InvalidArgument", "InvalidRequest"} and "none-match" in message.lower()

    def _no_conditional(self, exc: ClientError) -> None:
        self._conditional_writes = False
        log.warning("%s does not support conditional writes (If-None-Match: %s); relying on HEAD before "
                    "PUT, which a concurrent writer of the same key could race", self._endpoint(), _error_code(exc))

    def _put(self, full: str, body: bytes | BinaryIO, sha256: str, lock: dict[str, Any]) -> bool:
        """One PUT; False when a conditional write found the key taken."""
        params: dict[str, Any] = {
            "Bucket": self.bucket, "Key": full, "Body": body,
            "ChecksumAlgorithm": "SHA256", "ChecksumSHA256": _hex_to_b64(sha256),
            "Metadata": {META_SHA256: sha256}, **lock,
        }
        rewind = None if isinstance(body, bytes) else (lambda: body.seek(0))
        return self._conditional_write("PutObject", self._client.put_object, params, full, rewind=rewind)

    def _conditional_write(self, operation: str, call: Any, params: dict[str, Any], full: str, *,
                           rewind: Any = None, answered_earlier: str | None = None) -> bool:
        """Run a write with `If-None-Match: *` where the store supports it: True when written, False
        when the key was already taken. `answered_earlier` names an error code meaning an earlier
        attempt succeeded and only its answer was lost (verification then checks the object)."""
        while True:
            if self._conditional_writes:
                params["IfNoneMatch"] = "*"
            else:
                params.pop("IfNoneMatch", None)
            try:
                call(**params)
                return True
            except ClientError as exc:
                code = _error_code(exc)
                if _status(exc) == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                if answered_earlier is not None and code == answered_earlier:
                    return True
                if self._conditional_writes and self._conditional_unsupported(exc):
                    self._no_conditional(exc)
                    if rewind is not None:
                        rewind()
                    continue
                raise self._error(exc, self._where(full), operation) from exc
            except BotoCoreError as exc:
                raise self._error(exc, self._where(full), operation) from exc

    def _multipart(self, key: str, full: str, local_path: Path, sha256: str, size: int,
                   lock: dict[str, Any]) -> list[bytes] | None:
        """Upload in parts with per-part SHA-256; abort on any failure. None when the key was taken.

        Memory use is one part (part_size, raised only when a file would need over 10,000 parts).
        """
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        where = self._where(full)
        try:
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=full, ChecksumAlgorithm="SHA256",
                Metadata={META_SHA256: sha256}, **lock)["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, where, "CreateMultipartUpload") from exc
        finished = False
        try:
            digests: list[bytes] = []
            parts: list[dict[str, Any]] = []
            whole = MultiHasher()
            with local_path.open("rb") as fh:
                while chunk := fh.read(part_size):
                    whole.update(chunk)
                    digest = hashlib.sha256(chunk).digest()
                    number = len(parts) + 1
                    try:
                        r = self._client.upload_part(
                            Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=chunk,
                            ChecksumAlgorithm="SHA256", ChecksumSHA256=_b64(digest))
                    except (ClientError, BotoCoreError) as exc:
                        raise self._error(exc, where, f"UploadPart {number}") from exc
                    if r.get("ChecksumSHA256") not in (None, _b64(digest)):
                        raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                               f"part {number}: store reports checksum {r['ChecksumSHA256']}, "
                                               f"we sent {_b64(digest)}")
                    digests.append(digest)
                    parts.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": _b64(digest)})
            if whole.digests().sha256 != sha256:
                raise repository_error(VerificationFailed, "REPO-SOURCE-CHANGED", key,
                                       f"{local_path} changed while uploading: now {whole.digests().sha256}, "
                                       f"expected {sha256}", expected=sha256, found=whole.digests().sha256)
            finished = self._complete(full, upload_id, parts)
            return digests if finished else None
        finally:
            if not finished:
                self._abort(full, upload_id)

    def _complete(self, full: str, upload_id: str, parts: list[dict[str, Any]]) -> bool:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full, "UploadId": upload_id,
                                  "MultipartUpload": {"Parts": parts}}
        # NoSuchUpload: an earlier attempt completed it and its answer was lost.
        return self._conditional_write("CompleteMultipartUpload", self._client.complete_multipart_upload, params,
                                       full, answered_earlier="NoSuchUpload")

    def _abort(self, full: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            log.error("could not abort multipart upload %s of %s (%s): abort it by hand or let a lifecycle "
                      "rule remove incomplete uploads", upload_id, self._where(full), type(exc).__name__)

    def sweep_temporary(self, older_than_seconds: float = 86400.0) -> list[str]:
        """Abort incomplete multipart uploads under our prefix started more than that long ago.

        They are the S3 counterpart of the filesystem's temporary leftovers: a process killed during
        an upload, or a CreateMultipartUpload whose answer was lost so we never knew its id. The
        default age (a day) keeps uploads of large files in progress elsewhere alive. Returns the
        keys whose uploads were aborted.
        """
        self._ensure_bucket()
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        aborted: list[str] = []
        paginator = self._client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] > cutoff:
                        continue
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                        UploadId=upload["UploadId"])
                    aborted.append(upload["Key"][len(self.prefix):])
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, self._where(self.prefix), "ListMultipartUploads") from exc
        return sorted(aborted)

    # -- verification ---------------------------------------------------------------------------

    def _sampled(self, key: str) -> bool:
        """Deterministic from the key, so a re-run re-reads the same objects and a test can predict it."""
        rate = self.config.verify_sample_rate
        if rate >= 1:
            return True
        if rate <= 0:
            return False
        return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64 < rate

    def _verify_written(self, key: str, full: str, sha256: str, size: int,
                        part_digests: list[bytes] | None, lock: dict[str, Any]) -> StoredObject:
        r = None
        for attempt in range(self.verify_attempts):
            r = self._head(full)
            if r is not None:
                break
            time.sleep(0.2 * (attempt + 1))  # stores with eventual read-after-write consistency
        if r is None:
            raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                   "the object is not there after a successful write")
        stored_object = self._verify(key, full, sha256, size, part_digests, r)
        self._ensure_lock(key, full, r, lock)
        return stored_object

    @staticmethod
    def _lock_missing(head: dict[str, Any], lock: dict[str, Any]) -> list[str]:
        missing = []
        if "ObjectLockMode" in lock:
            until = head.get("ObjectLockRetainUntilDate")
            if head.get("ObjectLockMode") != lock["ObjectLockMode"] or until is None \
                    or until < lock["ObjectLockRetainUntilDate"]:
                missing.append("retention")
        if lock.get("ObjectLockLegalHoldStatus") == "ON" and head.get("ObjectLockLegalHoldStatus") != "ON":
            missing.append("legal hold")
        return missing

    def _ensure_lock(self, key: str, full: str, head: dict[str, Any], lock: dict[str, Any]) -> None:
        """Check the lock the upload asked for is in place; set it where the store dropped it.

        Some stores ignore the lock headers of CreateMultipartUpload (moto among them), and an
        object from a run that crashed before this point has none: both get it set here, and the
        result is read back. Retention is only ever extended, never shortened.
        """
        missing = self._lock_missing(head, lock)
        if not missing:
            return
        log.warning("%s: %s not set by the upload; setting it now", self._where(full), " and ".join(missing))
        try:
            if "retention" in missing:
                self._client.put_object_retention(
                    Bucket=self.bucket, Key=full,
                    Retention={"Mode": lock["ObjectLockMode"], "RetainUntilDate": lock["ObjectLockRetainUntilDate"]})
            if "legal hold" in missing:
                self._client.put_object_legal_hold(Bucket=self.bucket, Key=full, LegalHold={"Status": "ON"})
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, self._where(full), "PutObjectRetention/LegalHold") from exc
        after = self._head(full) or {}
        still = self._lock_missing(after, lock)
        if still:
            raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                   f"Object Lock not in place after setting it: {' and '.join(still)}",
                                   check="object lock", missing=still)

    def _verify(self, key: str, full: str, sha256: str, size: int, part_digests: list[bytes] | None,
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
        if checksum and not _is_multipart(head):
            if checksum != _hex_to_b64(sha256):
                raise fail("stored SHA-256 checksum", _hex_to_b64(sha256), checksum)
            checksum_checked = True
        elif checksum and part_digests is not None:
            # Composite: SHA-256 over the concatenated part digests, "-<parts>" on AWS (moto omits it).
            composite = _b64(hashlib.sha256(b"".join(part_digests)).digest())
            base, _, count = checksum.partition("-")
            if base != composite or (count and int(count) != len(part_digests)):
                raise fail("stored composite SHA-256 checksum", f"{composite}-{len(part_digests)}", checksum)
            checksum_checked = True
        # No stored checksum we could compare (a store that keeps none, or a multipart object from
        # an earlier run whose part digests we no longer know): then the bytes must be read.
        if full_read or not checksum_checked or self._sampled(key):
            self._rehash(key, full, sha256, size)
        return StoredObject(key, size, sha256)

    def _rehash(self, key: str, full: str, sha256: str, size: int) -> None:
        """Stream the object back and hash it; retried, because a read can break off or be damaged in transit."""
        found: list[str] = []
        last_error: RepositoryError | None = None
        for attempt in range(self.verify_attempts):
            if attempt:
                time.sleep(0.2 * attempt)
            try:
                d = self._hash_object(full)
            except ObjectNotFound:
                raise
            except RepositoryError as exc:
                last_error = exc
                continue
            if d.sha256 == sha256 and d.size == size:
                return
            found.append(f"{d.sha256} ({d.size} bytes)")
        if not found and last_error is not None:
            raise last_error
        raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                               f"read back {len(found)} time(s), SHA-256 never matched {sha256} ({size} bytes): "
                               f"{'; '.join(found)}", check="re-hash", expected=sha256, found=found)
