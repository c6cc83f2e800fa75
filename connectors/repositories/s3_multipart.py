"""Multipart upload for files above `multipart_threshold_mb`, and the sweep of uploads left behind.

Every part carries its own SHA-256 (`x-amz-checksum-sha256`), the object our full-file SHA-256
as `x-amz-meta-sha256` (a multipart object's stored checksum is composite, the SHA-256 of the
part digests, which `s3_verify` compares). The file is hashed again while it is read for the
parts, so a file changed since the packager measured it is never completed. Any failure aborts
the upload: no half-uploaded parts are left to pay for.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.repositories.base import VerificationFailed, repository_error
from connectors.repositories.s3_client import META_SHA256, S3Bucket, b64
from schemas.digest import MultiHasher

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PARTS = 10_000


def upload_multipart(bucket: S3Bucket, key: str, full: str, local_path: Path, sha256: str, size: int,
                     lock: dict[str, Any], *, part_size: int) -> list[bytes] | None:
    """Upload in parts with per-part SHA-256; abort on any failure. Returns the part digests, or
    None when the key was taken (by another writer, or by our own earlier unanswered attempt).

    Memory use is one part (`part_size`, raised only when a file would need over 10,000 parts).
    """
    part_size = max(part_size, -(-size // MAX_PARTS))
    where = bucket.where(full)
    try:
        upload_id = bucket.client.create_multipart_upload(
            Bucket=bucket.name, Key=full, ChecksumAlgorithm="SHA256",
            Metadata={META_SHA256: sha256}, **lock)["UploadId"]
    except (ClientError, BotoCoreError) as exc:
        raise bucket.error(exc, where, "CreateMultipartUpload") from exc
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
                    r = bucket.client.upload_part(
                        Bucket=bucket.name, Key=full, UploadId=upload_id, PartNumber=number, Body=chunk,
                        ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(digest))
                except (ClientError, BotoCoreError) as exc:
                    raise bucket.error(exc, where, f"UploadPart {number}") from exc
                if r.get("ChecksumSHA256") not in (None, b64(digest)):
                    raise repository_error(VerificationFailed, "REPO-VERIFY-FAILED", key,
                                           f"part {number}: store reports checksum {r['ChecksumSHA256']}, "
                                           f"we sent {b64(digest)}")
                digests.append(digest)
                parts.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": b64(digest)})
        if whole.digests().sha256 != sha256:
            raise repository_error(VerificationFailed, "REPO-SOURCE-CHANGED", key,
                                   f"{local_path} changed while uploading: now {whole.digests().sha256}, "
                                   f"expected {sha256}", expected=sha256, found=whole.digests().sha256)
        finished = _complete(bucket, full, upload_id, parts)
        return digests if finished else None
    finally:
        if not finished:
            _abort(bucket, full, upload_id)


def _complete(bucket: S3Bucket, full: str, upload_id: str, parts: list[dict[str, Any]]) -> bool:
    params: dict[str, Any] = {"Bucket": bucket.name, "Key": full, "UploadId": upload_id,
                              "MultipartUpload": {"Parts": parts}}
    # NoSuchUpload: an earlier attempt completed it and its answer was lost.
    return bucket.conditional_write("CompleteMultipartUpload", bucket.client.complete_multipart_upload, params,
                                    full, answered_earlier="NoSuchUpload")


def _abort(bucket: S3Bucket, full: str, upload_id: str) -> None:
    try:
        bucket.client.abort_multipart_upload(Bucket=bucket.name, Key=full, UploadId=upload_id)
    except (ClientError, BotoCoreError) as exc:
        log.error("could not abort multipart upload %s of %s (%s): abort it by hand or let a lifecycle "
                  "rule remove incomplete uploads", upload_id, bucket.where(full), type(exc).__name__)


def sweep_uploads(bucket: S3Bucket, prefix: str, older_than_seconds: float) -> list[str]:
    """Abort incomplete multipart uploads under `prefix` started more than that long ago; returns
    their keys relative to `prefix`."""
    bucket.ensure()
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    aborted: list[str] = []
    paginator = bucket.client.get_paginator("list_multipart_uploads")
    try:
        for page in paginator.paginate(Bucket=bucket.name, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] > cutoff:
                    continue
                bucket.client.abort_multipart_upload(Bucket=bucket.name, Key=upload["Key"],
                                                     UploadId=upload["UploadId"])
                aborted.append(upload["Key"][len(prefix):])
    except (ClientError, BotoCoreError) as exc:
        raise bucket.error(exc, bucket.where(prefix), "ListMultipartUploads") from exc
    return sorted(aborted)
