"""HTTP as every source speaks it: what an answer's status means, and the one document streamer.

The unified system serves its files over HTTP, and a self-built system may keep a URL per
document (`content.kind: url`); both go through `stream_document`, so a document cut short
resumes the same way whichever source it comes from:

- 404/410 raise `DocumentUnavailable` at once: the document is gone, a fault of the matter;
- 408, 429, 5xx, transport errors (connect, timeout, reset) and bodies that end before their
  Content-Length are transient: retried with the caller's `Backoff`, resuming after the bytes
  already yielded (`Range: bytes=N-`; a server that ignores Range answers 200 and the first N
  bytes are skipped), so the consumer sees each byte exactly once; when the attempts are spent,
  `SourceUnavailable`;
- any other status is `SourceUnavailable` at once (401/403 with the caller's hint about the
  credentials): retrying will not help, and the matter must stay pending rather than be
  quarantined for the source's own trouble.

Messages and logs name the URL without its user:password part (sent as Basic auth instead);
headers (a bearer token) are never named.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import httpx

from connectors.retry import Backoff, Transient, failed
from schemas.errors import DocumentUnavailable, SourceUnavailable
from schemas.model import mask_text

GONE = frozenset({404, 410})
TRANSIENT_STATUS = frozenset({408, 429})


def describe(exc: httpx.HTTPError) -> str:
    """An httpx failure for a message: its type (ConnectError, ReadTimeout…) and its text."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def transient_reason(exc: Exception) -> str | None:
    """The `transient` of `connectors.retry.with_retries` for one HTTP exchange."""
    if isinstance(exc, Transient):
        return exc.reason
    if isinstance(exc, httpx.TransportError):
        return describe(exc)
    return None


def check_status(resp: httpx.Response, what: str, *, auth_hint: str = "") -> None:
    """Pass a 2xx; raise `Transient` for a status worth repeating, `SourceUnavailable` otherwise.

    `what` names the exchange ("source x: GET <url>"); `auth_hint` follows a 401/403 (which
    setting holds the credentials). Callers that accept 404/410 check for them first.
    """
    code = resp.status_code
    if 200 <= code < 300:
        return
    if code >= 500 or code in TRANSIENT_STATUS:
        raise Transient(f"HTTP {code}")
    if code in (401, 403):
        raise SourceUnavailable(f"{what}: HTTP {code}{auth_hint}")
    resp.read()  # a streamed answer has not read its (short) error body yet
    raise SourceUnavailable(f"{what}: HTTP {code}: {mask_text(resp.text[:200])}")


def _split_credentials(url: str | httpx.URL) -> tuple[httpx.URL, httpx.BasicAuth | None]:
    """The URL without a user:password part, and that part as Basic auth: sent the same as httpx
    would send it, but then neither our messages nor httpx's own request log can show it."""
    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return parsed, None
    return parsed.copy_with(username=None, password=None), httpx.BasicAuth(parsed.username, parsed.password)


def stream_document(
    client: httpx.Client,
    url: str | httpx.URL,
    *,
    where: str,
    backoff: Backoff,
    timeout: httpx.Timeout | float,
    headers: Mapping[str, str] | None = None,
    auth_hint: str = "",
) -> Iterator[bytes]:
    """GET `url` and yield its body as it arrives, resuming after a transient failure (see the
    module docstring). `where` opens every message ("source x: document y"); `headers` go with
    every request and are never shown."""
    target, auth = _split_credentials(url)
    what = f"{where}: GET {target}"
    delivered = 0
    last = ""
    for attempt in backoff:
        request_headers = dict(headers or {})
        if delivered:
            request_headers["Range"] = f"bytes={delivered}-"
        try:
            with client.stream("GET", target, headers=request_headers, timeout=timeout,
                               auth=auth or httpx.USE_CLIENT_DEFAULT) as resp:
                if resp.status_code in GONE:
                    raise DocumentUnavailable(f"{what} answered HTTP {resp.status_code}")
                check_status(resp, what, auth_hint=auth_hint)
                skip = 0 if resp.status_code == 206 else delivered
                declared = resp.headers.get("Content-Length")
                received = 0
                # Chunks as they arrive (at most the transport's read size): a re-chunking buffer
                # would hold back bytes that a cut-short body then never delivers.
                for chunk in resp.iter_bytes():
                    received += len(chunk)
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if chunk:
                        delivered += len(chunk)
                        yield chunk
                if declared is not None and received < int(declared):
                    raise Transient(f"body ended after {received} of {declared} bytes")
                return
        except Transient as exc:
            last = exc.reason
        except httpx.HTTPError as exc:  # transport errors, and a broken encoding or redirect loop
            last = describe(exc)
        failed(what, last, attempt, backoff)
    raise SourceUnavailable(f"{what} failed after {backoff.attempts} attempts: {last}")
