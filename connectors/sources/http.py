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
from contextlib import ExitStack, contextmanager

import httpx

from connectors.retry import Backoff, Deadline, Transient, failed
from connectors.sources.http_deadline import bounded
from connectors.sources.http_direct import TRANSPORT_FAULTS, Answer, DirectGet
from schemas.errors import DocumentUnavailable, InvariantBroken, SourceUnavailable
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
    _check_code(resp.status_code, what, auth_hint, _error_text(resp))


def _error_text(resp: httpx.Response) -> str:
    """The start of the body of an answer whose message quotes it (not 2xx, 401/403 or transient)."""
    code = resp.status_code
    if 200 <= code < 300 or code >= 500 or code in TRANSIENT_STATUS or code in (401, 403):
        return ""
    resp.read()  # a streamed answer has not read its (short) error body yet
    return resp.text[:200]


def _check_code(code: int, what: str, auth_hint: str, error_text: str) -> None:
    """check_status's rules on a status code and the start of the answer's body."""
    if 200 <= code < 300:
        return
    if code >= 500 or code in TRANSIENT_STATUS:
        raise Transient(f"HTTP {code}")
    if code in (401, 403):
        raise SourceUnavailable(f"{what}: HTTP {code}{auth_hint}")
    raise SourceUnavailable(f"{what}: HTTP {code}: {mask_text(error_text)}")


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
    direct: DirectGet | None = None,
    deadline: Deadline | None = None,
) -> Iterator[bytes]:
    """GET `url` and yield its body as it arrives, resuming after a transient failure (see the
    module docstring). `where` opens every message ("source x: document y"); `headers` go with
    every request and are never shown. With `direct`, the GET goes through http.client
    (connectors/sources/http_direct.py) wherever that path fetches as httpx would."""
    target, auth = _split_credentials(url)
    what = f"{where}: GET {target}"
    delivered = 0
    last = ""
    use_direct = direct is not None and direct.handles(target)
    base_headers = dict(headers or {})
    if use_direct and auth is not None:  # httpx sends it for its path; for http.client, httpx builds it once
        signed = next(auth.sync_auth_flow(httpx.Request("GET", target)))
        base_headers["Authorization"] = signed.headers["Authorization"]
    for attempt in backoff:
        request_headers = dict(base_headers)
        if delivered:
            request_headers["Range"] = f"bytes={delivered}-"
        clock = deadline.start() if deadline is not None else None
        try:
            with ExitStack() as stack:
                with bounded(clock):  # the connection, the request and the answer's head
                    if use_direct:
                        if direct is None:
                            raise InvariantBroken("direct GET chosen without a direct client")
                        answering = direct.get(target, request_headers)
                    else:
                        answering = _via_httpx(client, target, request_headers, timeout, auth)
                    answer = stack.enter_context(answering)
                if answer.status in GONE:
                    raise DocumentUnavailable(f"{what} answered HTTP {answer.status}")
                _check_code(answer.status, what, auth_hint, answer.error_text)
                skip = 0 if answer.status == 206 else delivered
                declared = answer.content_length
                received = 0
                # Blocks as they arrive (at most the transport's read size): a re-chunking buffer
                # would hold back bytes that a cut-short body then never delivers. Each block is
                # read under the clock, never across a yield (the consumer may be another thread).
                while True:
                    with bounded(clock):
                        chunk = next(answer.blocks, b"")
                    if not chunk:
                        break
                    received += len(chunk)
                    if clock is not None:
                        clock(received)
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
        except TRANSPORT_FAULTS as exc:  # the direct path's: refused, reset, timed out, cut short
            last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        failed(what, last, attempt, backoff)
    raise SourceUnavailable(f"{what} failed after {backoff.attempts} attempts: {last}")


@contextmanager
def _via_httpx(client: httpx.Client, target: httpx.URL, headers: dict[str, str],
               timeout: httpx.Timeout | float, auth: httpx.BasicAuth | None) -> Iterator[Answer]:
    with client.stream("GET", target, headers=headers, timeout=timeout,
                       auth=auth or httpx.USE_CLIENT_DEFAULT) as resp:
        yield Answer(resp.status_code, resp.headers.get("Content-Length"), resp.iter_bytes(), _error_text(resp))

