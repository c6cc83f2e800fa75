"""The bucket as boto3 reaches it: the client and its settings, the one translation of boto errors
into coded `RepositoryError`s, and the calls every part of the S3 repository makes (HEAD, GET,
conditional writes).

boto3 retries every call itself (`max_attempts`, standard mode): an error that reaches us has
already been retried, which is why a transient one is reported as "still failing after N
attempts". Messages name the bucket, the key and the environment variables that hold the
credentials, never their values.

A GET's body is read under a deadline (`connect_timeout_seconds`, then `deadline_seconds_per_mb`
for each MiB): botocore's read timeout is per socket read, so a store that trickles would hold a
read-back for as long as it kept trickling. Each block is awaited with an alarm armed
(`guidang_io.watchdog`) that shuts the answer's socket down when the time left is spent; only the
time spent waiting for the store counts, not the time the reader takes over a block.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

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

from connectors.repositories.base import RepositoryError, not_found, repository_error
from connectors.repositories.s3_deadline import bound_attempts, cut_at_deadline
from connectors.retry import Deadline
from guidang_io.watchdog import watchdog
from schemas.config import S3Repository
from schemas.digest import BLOCK_SIZE, Digests, MultiHasher
from schemas.errors import InvariantBroken

log = logging.getLogger(__name__)

META_SHA256 = "sha256"  # sent as x-amz-meta-sha256

_ACCESS_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                 "InvalidToken", "ExpiredToken", "AccountProblem"}
_TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
                    "ThrottlingException", "RequestLimitExceeded", "OperationAborted"}
_MULTIPART_ETAG = re.compile(r'-\d+"?$')


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hex_to_b64(hex_digest: str) -> str:
    return b64(bytes.fromhex(hex_digest))


def _b64_to_hex(value: str) -> str | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_multipart(head: dict[str, Any]) -> bool:
    checksum = head.get("ChecksumSHA256") or ""
    return (head.get("ChecksumType") == "COMPOSITE" or "-" in checksum
            or bool(_MULTIPART_ETAG.search(head.get("ETag") or "")))


def stored_sha256(head: dict[str, Any]) -> str | None:
    """The full-object SHA-256 the store holds: its own checksum when single-part, else our metadata."""
    checksum = head.get("ChecksumSHA256")
    if checksum and not is_multipart(head):
        return _b64_to_hex(checksum)
    meta = (head.get("Metadata") or {}).get(META_SHA256, "").lower()
    return meta if re.fullmatch(r"[0-9a-f]{64}", meta) else None


class S3Bucket:
    """One bucket at one endpoint, with the client every S3 call goes through."""

    def __init__(self, config: S3Repository, *, max_attempts: int, connect_timeout: float,
                 read_timeout: float) -> None:
        self.config = config
        self.name = config.bucket
        self.max_attempts = max_attempts
        self.deadline = Deadline(connect_timeout + config.deadline_seconds_per_mb, config.deadline_seconds_per_mb)
        self.client = self._make_client(connect_timeout, read_timeout)
        self.conditional_writes = True  # until the store says it has no If-None-Match
        self._checked = False

    @property
    def endpoint(self) -> str:
        return self.config.endpoint_url or "AWS"

    def _make_client(self, connect_timeout: float, read_timeout: float) -> Any:
        cfg = self.config
        creds: dict[str, str] = {}
        if cfg.access_key_id_env or cfg.secret_access_key_env:
            names = [cfg.access_key_id_env, cfg.secret_access_key_env]
            if not all(names):
                raise repository_error(RepositoryError, "REPO-NO-CREDENTIALS", self.where(),
                                       "set both access_key_id_env and secret_access_key_env, or neither")
            missing = [n for n in names if n and not os.environ.get(n)]
            if missing:
                # Only the variables' names: their values are secrets.
                raise repository_error(RepositoryError, "REPO-NO-CREDENTIALS", self.where(),
                                       f"environment variable(s) {', '.join(missing)} named in the "
                                       "repository config are not set")
            creds = {"aws_access_key_id": os.environ[names[0]],  # type: ignore[index]
                     "aws_secret_access_key": os.environ[names[1]]}  # type: ignore[index]
        session = boto3.session.Session(region_name=cfg.region, **creds)
        botocfg = Config(
            # botocore's own "max_attempts" counts the retries only (one attempt more than ours).
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
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
        client = session.client("s3", endpoint_url=cfg.endpoint_url, config=botocfg)
        bound_attempts(client, connect_timeout + read_timeout, cfg.deadline_seconds_per_mb)
        return client

    # -- errors ---------------------------------------------------------------------------------

    def where(self, full_key: str | None = None) -> str:
        return f"s3://{self.name}/{full_key}" if full_key is not None else f"s3://{self.name}"

    def error(self, exc: Exception, where: str, op: str) -> RepositoryError:
        """One translation of boto errors into coded RepositoryErrors, for every call."""
        if isinstance(exc, ClientError):
            code, http_status = error_code(exc), status(exc)
            msg = exc.response.get("Error", {}).get("Message", "")
            if code == "NoSuchBucket" or (op == "HeadBucket" and http_status == 404):
                return repository_error(RepositoryError, "REPO-NO-BUCKET", self.where(),
                                        f"bucket {self.name!r} does not exist at {self.endpoint}")
            if code == "RequestTimeTooSkewed":
                return repository_error(RepositoryError, "REPO-CLOCK-SKEW", where,
                                        f"{op}: this machine's clock differs from the store's by more than "
                                        "it allows (usually 15 minutes); fix the time sync (NTP)")
            if code in _ACCESS_CODES or http_status == 403:
                return repository_error(RepositoryError, "REPO-ACCESS-DENIED", where,
                                        f"{op} refused ({code or http_status}): check the credentials "
                                        f"({self.config.access_key_id_env or 'default chain'}) and the "
                                        "bucket policy", s3_code=code, status=http_status)
            if http_status >= 500 or code in _TRANSIENT_CODES:
                return repository_error(RepositoryError, "REPO-TRANSIENT", where,
                                        f"{op} still failing after {self.max_attempts} attempts: "
                                        f"{code or http_status} {msg}".rstrip(), s3_code=code, status=http_status)
            return repository_error(RepositoryError, "REPO-S3-ERROR", where,
                                    f"{op}: {code or http_status} {msg}".rstrip(), s3_code=code, status=http_status)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return repository_error(RepositoryError, "REPO-NO-CREDENTIALS", where,
                                    f"{op}: no S3 credentials (set access_key_id_env/secret_access_key_env "
                                    "in the repository config, or configure boto3's default chain)")
        cut = cut_at_deadline()
        if isinstance(exc, ConnectionError | HTTPClientError) and cut is not None:
            return repository_error(RepositoryError, "REPO-TRANSIENT", where,
                                    f"{op} still failing after {self.max_attempts} attempts, the last cut at its "
                                    f"deadline ({cut:.0f} s: connect_timeout_seconds + read_timeout_seconds, "
                                    "and deadline_seconds_per_mb for each MiB sent)")
        if isinstance(exc, ConnectionError | HTTPClientError):
            return repository_error(RepositoryError, "REPO-UNREACHABLE", where,
                                    f"{op}: cannot talk to {self.endpoint} after {self.max_attempts} "
                                    f"attempts: {type(exc).__name__}")
        return repository_error(RepositoryError, "REPO-S3-ERROR", where, f"{op}: {type(exc).__name__}: {exc}")

    # -- calls ----------------------------------------------------------------------------------

    def ensure(self) -> None:
        """HEAD the bucket once, so a missing bucket or wrong credentials read as such, not as 404 keys."""
        if self._checked:
            return
        try:
            self.client.head_bucket(Bucket=self.name)
        except (ClientError, BotoCoreError) as exc:
            raise self.error(exc, self.where(), "HeadBucket") from exc
        self._checked = True

    def head(self, full: str) -> dict[str, Any] | None:
        """HEAD with the stored checksum; None when there is no such object."""
        self.ensure()
        try:
            return self.client.head_object(Bucket=self.name, Key=full, ChecksumMode="ENABLED")
        except ClientError as exc:
            if status(exc) == 404 or error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise self.error(exc, self.where(full), "HeadObject") from exc
        except BotoCoreError as exc:
            raise self.error(exc, self.where(full), "HeadObject") from exc

    def open(self, full: str) -> Iterator[bytes]:
        """The object's bytes in blocks; a missing object raises ObjectNotFound from this call."""
        asked = time.monotonic()
        body = self._get(full)
        return self.stream(full, body, waited=time.monotonic() - asked)

    def _get(self, full: str) -> Any:
        self.ensure()
        try:
            return self.client.get_object(Bucket=self.name, Key=full)["Body"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchKey" or (status(exc) == 404 and error_code(exc) != "NoSuchBucket"):
                raise not_found(self.where(full)) from exc
            raise self.error(exc, self.where(full), "GetObject") from exc
        except BotoCoreError as exc:
            raise self.error(exc, self.where(full), "GetObject") from exc

    def stream(self, full: str, body: Any, *, waited: float = 0.0) -> Iterator[bytes]:
        """A GET's body in blocks, each awaited within what is left of the deadline (`waited`: the
        seconds the GET took to answer). REPO-TRANSIENT when the read breaks off or runs late."""
        cut = _socket_shutdown(body)
        blocks = body.iter_chunks(BLOCK_SIZE)
        received = 0
        try:
            while True:
                left = self.deadline.allowed(received) - waited
                if left <= 0:
                    raise self._late(full, waited, received)
                alarm = watchdog().arm(left, cut)
                started = time.monotonic()
                try:
                    block = next(blocks, b"")
                except (BotoCoreError, OSError) as exc:
                    if alarm.fired:
                        raise self._late(full, waited + time.monotonic() - started, received) from exc
                    raise repository_error(RepositoryError, "REPO-TRANSIENT", self.where(full),
                                           f"reading the object broke off: {type(exc).__name__}") from exc
                finally:
                    alarm.disarm()
                    waited += time.monotonic() - started
                if alarm.fired:  # a body cut at the deadline can look like its end
                    raise self._late(full, waited, received)
                if not block:
                    return
                received += len(block)
                yield block
        finally:
            body.close()

    def _late(self, full: str, waited: float, received: int) -> RepositoryError:
        allowed = self.deadline.allowed(received)
        return repository_error(RepositoryError, "REPO-TRANSIENT", self.where(full),
                                f"reading the object passed its deadline: {waited:.0f} s for {received} bytes "
                                f"(allowed {allowed:.0f} s: connect_timeout_seconds, then "
                                f"deadline_seconds_per_mb for each MiB)")

    def hash_object(self, full: str) -> Digests:
        """Read the object back in full and hash it."""
        h = MultiHasher()
        for chunk in self.open(full):
            h.update(chunk)
        return h.digests()

    def conditional_write(self, operation: str, call: Callable[..., Any], params: dict[str, Any], full: str, *,
                          rewind: Callable[[], Any] | None = None, answered_earlier: str | None = None) -> bool:
        """Run a write with `If-None-Match: *` where the store supports it: True when written, False
        when the key was already taken. `answered_earlier` names an error code meaning an earlier
        attempt succeeded and only its answer was lost (verification then checks the object)."""
        while True:
            if self.conditional_writes:
                params["IfNoneMatch"] = "*"
            else:
                params.pop("IfNoneMatch", None)
            try:
                call(**params)
                return True
            except ClientError as exc:
                code = error_code(exc)
                if status(exc) == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                if answered_earlier is not None and code == answered_earlier:
                    return True
                if self.conditional_writes and self._conditional_unsupported(exc):
                    self._no_conditional(exc)
                    if rewind is not None:
                        rewind()
                    continue
                raise self.error(exc, self.where(full), operation) from exc
            except BotoCoreError as exc:
                raise self.error(exc, self.where(full), operation) from exc

    @staticmethod
    def _conditional_unsupported(exc: ClientError) -> bool:
        code, http_status = error_code(exc), status(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) + str(exc.response.get("Error", {}))
        if http_status == 501 or code == "NotImplemented":
            return True
        return code in {"InvalidArgument", "InvalidRequest"} and "none-match" in message.lower()

    def _no_conditional(self, exc: ClientError) -> None:
        self.conditional_writes = False
        log.warning("%s does not support conditional writes (If-None-Match: %s); relying on HEAD before "
                    "PUT, which a concurrent writer of the same key could race", self.endpoint, error_code(exc))


def _socket_shutdown(body: Any) -> Callable[[], None]:
    """How to end a blocked read of a GET's body from another thread: urllib3's `shutdown` of the
    answer's socket, under botocore's StreamingBody (which offers none of its own)."""
    shutdown = getattr(getattr(body, "_raw_stream", None), "shutdown", None)
    if shutdown is None:
        raise InvariantBroken("botocore's streaming body has no urllib3 answer to shut down: "
                              "an S3 read could not be bounded")
    return shutdown
