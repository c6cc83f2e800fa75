"""Connector for the unified government-service system's online-archiving interface (HTTP JSON).

It turns the platform's 办件 exchange records (PROJID, SERVICECODE, PROCESS, MATERIALS …) into
`schemas.model.Matter`, and every record that cannot become one into an `InvalidMatter` whose
problems name the PROJID and the platform's own field name, because that is the name the people
who must fix the record at the source know.

Transient trouble (connection errors, timeouts, 5xx, bodies cut short of their Content-Length) is
retried with exponential backoff (`connectors.retry`; what a status means and how a file is
streamed and resumed is `connectors.sources.http`, shared with the self-built systems); when the
retries are spent the connector raises `SourceUnavailable` naming the URL (the bearer token
travels in a header and is never named).
Digests are *not* checked here: the packager compares the bytes it receives with
`Document.source_sha256`, so that one place decides about fixity and quarantines mismatches.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from connectors.retry import Backoff, Deadline, Transient, with_retries
from connectors.sources.http import GONE, check_status, stream_document, transient_reason
from connectors.sources.http_deadline import bounded, deadline_client
from connectors.sources.http_direct import DirectGet, trust_context
from connectors.sources.reads import timed
from connectors.sources.unified_completion import aware_time, iter_completed, parse_counts
from schemas.completion import CompletedCount, CompletedItem
from schemas.config import UnifiedSource
from schemas.digest import json_digest
from schemas.errors import SourceUnavailable
from schemas.findings import GuidangError
from schemas.model import Document, InvalidMatter, Matter, Problem, mask_text

log = logging.getLogger(__name__)

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991: a fixed offset is exact
API = "/api/v1"
MAX_BACKOFF_SECONDS = 30.0
MAX_WINDOW_RESTARTS = 5
_T = TypeVar("_T")

# Canonical field -> the platform's field. Used both to read records and to translate validation
# errors back into names the source's people know.
MATTER_FIELDS: dict[str, str] = {
    "project_id": "PROJID",
    "service_code": "SERVICECODE",
    "service_version": "SERVICEVERSION",
    "service_name": "SERVICENAME",
    "matter_type": "SERVICETYPE",
    "handling_type": "PROJECTTYPE",
    "agency": "DEPTNAME",
    "agency_code": "DEPTCODE",
    "region_code": "AREACODE",
    "result": "RESULT",
    "decided_at": "TRANSACTTIME",
    "result_document_number": "RESULTCODE",
    "license_name": "CERTNAME",
    "license_number": "CERTCODE",
    "received_at": "RECEIVETIME",
    "completed_at": "FINISHTIME",
    "updated_at": "UPDATETIME",
}
APPLICANT_FIELDS = {"name": "APPLYERNAME", "card_type": "APPLYERPAGETYPE", "card_number": "APPLYERPAGECODE"}
STEP_FIELDS = {
    "name": "NODENAME",
    "actor": "HANDLER",
    "department": "DEPTNAME",
    "opinion": "OPINION",
    "started_at": "STARTTIME",
    "ended_at": "ENDTIME",
}
DOCUMENT_FIELDS = {
    "group": "GROUP",
    "title": "MATERIALNAME",
    "file_name": "FILENAME",
    "media_type": "FILETYPE",
    "size": "FILESIZE",
    "source_sha256": "SHA256",
    "locator": "FILEID",
}
_TIME_FIELDS = {"decided_at", "received_at", "completed_at", "updated_at", "started_at", "ended_at"}
# The model's own cross-field checks name canonical time fields; problems speak the platform's names.
_TIME_NAMES = {c: n for c, n in {**MATTER_FIELDS, **STEP_FIELDS}.items() if c in _TIME_FIELDS}


class UnifiedConnector:
    """`SourceConnector` for the unified system. Pass `client` to share a pool (it is then not
    closed by `close()`); otherwise the connector owns one with the configured timeout."""

    def __init__(self, config: UnifiedSource, *, client: httpx.Client | None = None) -> None:
        self.config = config
        self.name = config.name
        self._base = config.base_url.rstrip("/")
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if config.token_env:
            token = os.environ.get(config.token_env)
            if not token:
                raise GuidangError(
                    f"source {config.name}: environment variable {config.token_env} (bearer token) is not set"
                )
            self._headers["Authorization"] = f"Bearer {token}"
        self._auth_hint = f" (check the token in ${config.token_env})" if config.token_env else ""
        self._timeout = httpx.Timeout(config.timeout_seconds)
        self._deadline = Deadline(config.call_deadline_seconds, config.deadline_seconds_per_mb)
        self._backoff = Backoff(config.retries + 1, config.backoff_seconds, MAX_BACKOFF_SECONDS)
        self._owns_client = client is None
        self._client = client or deadline_client(timeout=self._timeout, verify=trust_context())
        # documents through http.client (connectors/sources/http_direct.py), unless a client with
        # its own transport was handed in: then that client fetches everything
        self._direct = DirectGet(config.timeout_seconds) if client is None else None

    # -- the SourceConnector protocol -----------------------------------------------------------

    def completed_between(self, since: datetime, until: datetime) -> Iterator[Matter | InvalidMatter]:
        """Matters with UPDATETIME in (since, until], oldest first, page by page.

        Offset paging skips a record when the window's contents change between two pages (a
        matter updated again leaves the window and every later one moves up a place). Each page
        reports the window's total; when it differs from the first page's, paging starts again
        from page 1 and records already yielded (same PROJID, UPDATETIME and content) are skipped; a
        corrected record re-sent with the same UPDATETIME is yielded too (triage keeps the later one).
        """
        params_base = {"since": _iso(since), "until": _iso(until), "size": self.config.page_size}
        # a record already yielded, by its digest alone: equal digests are equal records (PROJID,
        # UPDATETIME and content), and 32 bytes a record instead of three strings in a tuple keep a
        # large window's paging from growing the run process
        seen: set[bytes] = set()
        for _restart in range(MAX_WINDOW_RESTARTS + 1):
            page, expected_total, changed = 1, None, False
            while True:
                url = f"{self._base}{API}/matters"
                body = self._get_json(url, {**params_base, "page": page})
                items, total = _page_items(body, url)
                if expected_total is None:
                    expected_total = total
                elif total != expected_total:
                    log.info("source %s: window changed while paging (%s -> %s records); restarting",
                             self.name, expected_total, total)
                    changed = True
                    break
                for raw in items:
                    ident = bytes.fromhex(json_digest(raw))
                    if ident in seen:
                        continue
                    seen.add(ident)
                    yield self._to_matter(raw)
                if not items or page * self.config.page_size >= total:
                    break
                page += 1
            if not changed:
                return
        raise SourceUnavailable(
            f"source {self.name}: the window ({params_base['since']}, {params_base['until']}] kept changing "
            f"while paging ({MAX_WINDOW_RESTARTS} restarts); try again later"
        )

    def fetch_matter(self, project_id: str) -> Matter | InvalidMatter | None:
        url = f"{self._base}{API}/matters/{quote(project_id, safe='')}"
        body = self._get_json(url, None, missing_ok=True)
        if body is None:
            return None
        if not isinstance(body, dict):
            raise SourceUnavailable(f"source {self.name}: GET {url}: expected a JSON object")
        return self._to_matter(body)

    def open_document(self, document: Document) -> Iterator[bytes]:
        """The document's bytes in chunks, streamed by `connectors.sources.http.stream_document`:
        a transfer cut short resumes where it broke off, 404/410 raise DocumentUnavailable."""
        where = f"source {self.name}: document {document.locator} ({document.file_name})"
        chunks = stream_document(
            self._client, f"{self._base}{API}/files/{quote(document.locator, safe='')}", where=where,
            backoff=self._backoff, timeout=self._timeout, headers=self._headers, auth_hint=self._auth_hint,
            deadline=self._deadline,
            direct=self._direct,
        )
        return timed(chunks, self.config.read_timeout_seconds, where)

    def acknowledge(self, project_id: str, archival_code: str) -> None:
        """归档回传. A retried acknowledgement may reach the source twice; the platform treats
        archive-ack as idempotent per (PROJID, archival_code)."""
        url = f"{self._base}{API}/matters/{quote(project_id, safe='')}/archive-ack"
        what = f"source {self.name}: POST {url}"

        def attempt() -> None:
            with bounded(self._deadline.start()):
                resp = self._client.post(url, json={"archival_code": archival_code}, headers=self._headers,
                                         timeout=self._timeout)
            check_status(resp, what, auth_hint=self._auth_hint)

        self._with_retries(what, attempt)

    def count_completed(self, start: datetime, end: datetime) -> list[CompletedCount]:
        """Matters with FINISHTIME in [start, end), counted by the platform's statistics call (per
        DEPTNAME and SERVICETYPE, invalid records included), under the same retries as the rest."""
        url = f"{self._base}{API}/statistics/completed"
        body = self._get_json(url, {"from": _iso(start), "to": _iso(end)})
        return parse_counts(body, f"source {self.name}: GET {url}")

    def list_completed(self, start: datetime, end: datetime) -> Iterator[CompletedItem] | None:
        """The same matters one by one from the platform's 办结 listing, read page by page as the
        iterator is consumed (so a fault raises from the iteration)."""
        return iter_completed(
            self._get_json, f"{self._base}{API}/completed", {"from": _iso(start), "to": _iso(end)},
            page_size=self.config.page_size, source=self.name, tz=SHANGHAI, max_restarts=MAX_WINDOW_RESTARTS,
        )

    def fetch_catalogue(self) -> list[dict[str, Any]]:
        """The platform's matter catalogue as its raw rows (SERVICECODE, SERVICENAME, …)."""
        url = f"{self._base}{API}/catalogue"
        body = self._get_json(url, None)
        items = body.get("items") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise SourceUnavailable(f"source {self.name}: GET {url}: expected a list of catalogue rows")
        return items

    def close(self) -> None:
        if self._owns_client:
            self._client.close()
        if self._direct is not None:
            self._direct.close()

    def __enter__(self) -> UnifiedConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP with retries ------------------------------------------------------------------------

    def _with_retries(self, what: str, fn: Callable[[], _T]) -> _T:
        """`fn` under the source's retries; `what` ("source x: GET <url>") opens the log lines and
        the final SourceUnavailable."""

        def give_up(last: str, _exc: Exception) -> SourceUnavailable:
            return SourceUnavailable(f"{what} failed after {self._backoff.attempts} attempts: {last}")

        return with_retries(fn, self._backoff, what=what, transient=transient_reason, give_up=give_up)

    def _get_json(self, url: str, params: dict[str, Any] | None, *, missing_ok: bool = False) -> Any:
        what = f"source {self.name}: GET {url}"

        def attempt() -> Any:
            in_time = self._deadline.start()
            with bounded(in_time), self._client.stream("GET", url, params=params, headers=self._headers,
                                                       timeout=self._timeout) as resp:
                if missing_ok and resp.status_code in GONE:
                    return None
                check_status(resp, what, auth_hint=self._auth_hint)
                body = bytearray()
                for block in resp.iter_bytes():  # every read, the head's too, under the call's clock
                    body += block
                    in_time(len(body))
            try:
                return json.loads(bytes(body))
            except ValueError as exc:  # a body cut short without a Content-Length to tell
                raise Transient(f"answer is not valid JSON: {exc}") from exc

        return self._with_retries(what, attempt)

    # -- mapping ----------------------------------------------------------------------------------

    def _to_matter(self, raw: dict[str, Any]) -> Matter | InvalidMatter:
        projid = raw.get("PROJID")
        label = str(projid).strip() if isinstance(projid, str | int) and str(projid).strip() else None
        problems: list[Problem] = []
        try:
            data = _canonical(raw, self.name)
            return Matter.model_validate(data)
        except ValidationError as exc:
            problems = [_problem(label, e) for e in exc.errors()]
        except (TypeError, AttributeError) as exc:  # a list where an object belongs, and the like
            problems = [Problem(message=f"PROJID {label}: record has the wrong shape: {exc}")]
        if label is None:
            label = "NOPROJID-" + json_digest(raw)[:12]
        return InvalidMatter(
            source=self.name,
            project_id=label,
            updated_at=_parse_time(raw.get("UPDATETIME")) if isinstance(raw.get("UPDATETIME"), str) else None,
            raw=raw,
            findings=[Problem(code=p.code, message=mask_text(p.message)) for p in problems],
        )


def fetch_catalogue(config: UnifiedSource) -> list[dict[str, str]]:
    """The unified system's 事项目录 as rows keyed 事项编码, 事项名称, 事项类型, 实施机构 (the
    retention table's own column names), for `guidang retention coverage --from-source`."""
    with UnifiedConnector(config) as conn:
        rows = conn.fetch_catalogue()
    out = []
    for row in rows:
        out.append({
            "事项编码": str(row.get("SERVICECODE") or ""),
            "事项名称": str(row.get("SERVICENAME") or ""),
            "事项类型": str(row.get("SERVICETYPE") or ""),
            "实施机构": str(row.get("DEPTNAME") or ""),
        })
    return out


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=SHANGHAI)
    return dt.isoformat()


def _page_items(body: Any, url: str) -> tuple[list[dict[str, Any]], int]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list) or not isinstance(body.get("total"), int):
        raise SourceUnavailable(f"GET {url}: expected a JSON object with 'total' and 'items'")
    items = body["items"]
    if not all(isinstance(i, dict) for i in items):
        raise SourceUnavailable(f"GET {url}: every item must be a JSON object")
    return items, body["total"]


def _parse_time(value: Any) -> Any:
    """ISO text -> aware datetime (naive text is Asia/Shanghai); anything else is left for the model
    to reject with the field's name."""
    dt = aware_time(value, SHANGHAI)
    return value if dt is None else dt


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _pick(raw: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Copy the fields the record has; an absent or blank field is left out so that the model
    reports a mandatory one as "field required" rather than as a wrong type."""
    out: dict[str, Any] = {}
    for canon, name in mapping.items():
        v = raw.get(name)
        if not _present(v):
            continue
        if canon in _TIME_FIELDS:
            v = _parse_time(v)
        elif canon in ("project_id", "service_version", "matter_type", "region_code") and isinstance(v, int):
            v = str(v)
        out[canon] = v
    return out


def _canonical(raw: dict[str, Any], source: str) -> dict[str, Any]:
    data = _pick(raw, MATTER_FIELDS)
    data["source"] = source
    data["applicant"] = _pick(raw, APPLICANT_FIELDS)
    data["steps"] = [_pick(s, STEP_FIELDS) for s in raw.get("PROCESS") or []]
    data["documents"] = [_pick(d, DOCUMENT_FIELDS) for d in raw.get("MATERIALS") or []]
    return data


def _field_name(loc: tuple[int | str, ...]) -> str:
    """('applicant', 'name') -> APPLYERNAME; ('documents', 2, 'file_name') -> MATERIALS[2].FILENAME."""
    if not loc:
        return "record"
    head = loc[0]
    if head == "applicant" and len(loc) > 1:
        return APPLICANT_FIELDS.get(str(loc[1]), str(loc[1]))
    if head in ("steps", "documents"):
        table, mapping = ("PROCESS", STEP_FIELDS) if head == "steps" else ("MATERIALS", DOCUMENT_FIELDS)
        if len(loc) == 1:
            return table
        name = f"{table}[{loc[1]}]"
        return f"{name}.{mapping.get(str(loc[2]), str(loc[2]))}" if len(loc) > 2 else name
    return MATTER_FIELDS.get(str(head), ".".join(map(str, loc)))


def _problem(label: str | None, error: Any) -> Problem:
    field = _field_name(tuple(error.get("loc") or ()))
    if error.get("type") == "missing":
        msg = "field required"
    else:
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        for canon, name in _TIME_NAMES.items():
            msg = msg.replace(canon, name)
    return Problem.from_error(error, f"PROJID {label or '(missing)'}: {field}: {msg}")
