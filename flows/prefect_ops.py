"""What a night tells the Prefect server besides its state: logs, events, artifacts, its name.

Operations watch the server, not the worker's terminal, so everything they act on has to arrive
there: guidang's own log records (the quarantine warnings) as the run's logs, masked; events they
can write automations against (`guidang.night.completed` / `guidang.night.failed` with the counts,
`guidang.matter.quarantined` with the reason codes); a progress artifact while the night runs,
and after it the tables per source and per 实施机构 and a report that names the window, the bytes,
the DA/T 93 batch keys and the ledger's chain head.
"""

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from ledger import night_queries
from schemas.config import Settings, load_settings
from schemas.findings import GuidangError
from schemas.layout import transfer_key
from schemas.model import MaskingFilter, mask_text

log = logging.getLogger("guidang")

NIGHT_EVENT_PREFIX = "guidang.night"
MATTER_EVENT_PREFIX = "guidang.matter"
EVENTS_PER_NIGHT = 1000  # quarantined-matter events one night sends at most; the night's event has the count


# ---------------------------------------------------------------- configuration and names


def prefect_server() -> str:
    """Which Prefect API a child process's night will talk to (its settings: environment or profile)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return f"the Prefect server at {url}" if url else "a temporary Prefect server started by the night itself"


def config_path(config: str | None) -> str:
    """The parameter, else GUIDANG_CONFIG (a worker's or `guidang serve`'s environment), else ./guidang.yaml."""
    return config or os.environ.get("GUIDANG_CONFIG") or "guidang.yaml"


def _zone(config: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(load_settings(config_path(config)).timezone)
    except Exception:  # the run will say what is wrong with the file; its name need not
        return ZoneInfo("Asia/Shanghai")


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def night_run_name() -> str:
    """`nightly-2026-12-01`: the night's date in the configured zone (its `as_of`, else when it was
    scheduled to start); a backfill is `backfill-<from>-<to>`. The date is the day of the run's
    nominal time, the same day `guidang audit register --night` names."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    zone = _zone(params.get("config"))
    since, until = _as_datetime(params.get("since")), _as_datetime(params.get("until"))
    when = _as_datetime(params.get("as_of")) or _as_datetime(flow_run.scheduled_start_time) or datetime.now(UTC)
    day = when.astimezone(zone).date().isoformat()
    if since is not None:
        end = (until or when).astimezone(zone).date().isoformat()
        return f"backfill-{since.astimezone(zone).date().isoformat()}-to-{end}"
    return f"nightly-{day}" + ("-dry-run" if params.get("dry_run") else "")


# ---------------------------------------------------------------- logs


class _StampRun(logging.Filter):
    """Records logged outside any Prefect run context (the plain worker threads of a quarantine retry)
    are the run's logs too: they carry its flow run id, which Prefect's API handler reads first."""

    def __init__(self, flow_run_id: str) -> None:
        super().__init__()
        self.flow_run_id = flow_run_id

    def filter(self, record: logging.LogRecord) -> bool:
        from prefect.context import FlowRunContext, TaskRunContext

        if not getattr(record, "flow_run_id", None) and FlowRunContext.get() is None and TaskRunContext.get() is None:
            record.flow_run_id = self.flow_run_id
        return True


class ExpectedFaultsWithoutTraceback(logging.Filter):
    """Prefect's engines log a failed task or flow with its traceback. For a fault guidang expects
    and names (a GuidangError: a source down, a store refusing) the line itself says it all: the
    traceback goes to DEBUG, so a failed night's worker log is its error lines, not pages of stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, GuidangError):
            logging.getLogger("guidang.tracebacks").debug("%s", record.getMessage(), exc_info=record.exc_info)
            record.exc_info, record.exc_text = None, None
        return True


ENGINE_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


def expected_faults_without_traceback() -> None:
    """Install ExpectedFaultsWithoutTraceback on Prefect's engine loggers (once per process)."""
    for name in ENGINE_LOGGERS:
        engine_logger = logging.getLogger(name)
        if not any(isinstance(f, ExpectedFaultsWithoutTraceback) for f in engine_logger.filters):
            engine_logger.addFilter(ExpectedFaultsWithoutTraceback())


@contextmanager
def guidang_logs_to_server() -> Iterator[None]:
    """guidang's records go to the server as the run's logs, masked, however the process was started
    (a worker, `guidang serve`, `guidang run`): Prefect attaches its API handler to the `guidang`
    logger only when PREFECT_LOGGING_EXTRA_LOGGERS names it at start-up, so the flow makes sure,
    for its own length (what it added is removed after, so a later plain call is not shipped)."""
    from prefect.logging.handlers import APILogHandler
    from prefect.runtime import flow_run

    expected_faults_without_traceback()
    logger = logging.getLogger("guidang")
    added: APILogHandler | None = None
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        added = APILogHandler()
        logger.addHandler(added)
    old_level = logger.level
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)  # the server keeps the night's INFO lines; terminals filter on their handler
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, MaskingFilter) for f in target.filters):
            target.addFilter(MaskingFilter())
    stamp = _StampRun(str(flow_run.id)) if flow_run.id else None
    api_handlers = [h for h in logger.handlers if isinstance(h, APILogHandler)]
    for h in api_handlers:
        if stamp is not None:
            h.addFilter(stamp)
    try:
        yield
    finally:
        for h in api_handlers:
            if stamp is not None:
                h.removeFilter(stamp)
        if added is not None:
            logger.removeHandler(added)
        logger.setLevel(old_level)


# ---------------------------------------------------------------- progress


class Progress:
    """One progress artifact per night: each source has an equal share, of which collecting is the
    first tenth, staging the next half and transferring the rest, advanced as chunks finish."""

    def __init__(self, sources: list[str]) -> None:
        from prefect.artifacts import create_progress_artifact

        self.sources = sources or ["-"]
        self.done: dict[str, float] = dict.fromkeys(self.sources, 0.0)
        self._sent = 0.0  # when the last update went (time.monotonic)
        self.artifact: UUID | None = create_progress_artifact(
            0.0, key="night-progress", description="share of the night's sources collected, staged and transferred"
        )

    def advance(self, source: str, stage: str, finished: int, total: int) -> None:
        start, width = {"collect": (0.0, 0.1), "stage": (0.1, 0.5), "transfer": (0.6, 0.4)}[stage]
        self.done[source] = max(self.done.get(source, 0.0), start + width * (finished / total if total else 1.0))
        if time.monotonic() - self._sent >= PROGRESS_EVERY:  # each update is a call the server works on
            self._update()

    def finish(self, source: str) -> None:
        self.done[source] = 1.0
        self._update()

    def _update(self) -> None:
        from prefect.artifacts import update_progress_artifact

        if self.artifact is None:
            return
        self._sent = time.monotonic()
        value = 100.0 * sum(self.done.values()) / len(self.done)
        try:
            update_progress_artifact(self.artifact, round(value, 1))
        except Exception as exc:  # the server being slow must not fail the night
            log.info("progress artifact not updated: %s", exc)


PROGRESS_EVERY = 2.0  # seconds between two progress updates of one night (a source's end is always sent)


# ---------------------------------------------------------------- events


def _night_resource(summary: dict[str, Any] | None, name: str) -> dict[str, str]:
    run_id = (summary or {}).get("run_id") or "not-started"
    return {"prefect.resource.id": f"{NIGHT_EVENT_PREFIX}.{run_id}", "prefect.resource.name": name,
            "guidang.run-id": run_id}


def emit_night(summary: dict[str, Any] | None, name: str, *, error: str | None = None) -> None:
    """`guidang.night.completed` or `guidang.night.failed` with the counts (and the error, masked)."""
    from prefect.events import emit_event

    failed = error is not None or summary is None or summary.get("status") != "completed"
    payload: dict[str, Any] = {"status": "failed" if failed else "completed"}
    if summary:
        payload |= {"totals": summary.get("totals", {}), "quarantine_reasons": summary.get("quarantine_reasons", {}),
                    "sources": {n: {k: v for k, v in s.items() if k != "error"} | (
                        {"error": mask_text(s["error"])} if s.get("error") else {})
                        for n, s in summary.get("sources", {}).items()}}
    if error is not None:
        payload["error"] = mask_text(error)
    elif failed and summary:
        payload["error"] = mask_text("; ".join(s["error"] for s in summary.get("sources", {}).values()
                                               if s.get("error")) or "the night failed")
    emit_event(f"{NIGHT_EVENT_PREFIX}.{'failed' if failed else 'completed'}",
               resource=_night_resource(summary, name), payload=payload)


def emit_quarantined(settings: Settings, run_id: str, name: str) -> int:
    """One `guidang.matter.quarantined` per matter this night quarantined, with its reason codes;
    the night's own events carry the totals, so a night of thousands stops at EVENTS_PER_NIGHT."""
    from prefect.events import emit_event

    from ledger.store import Ledger

    with Ledger(settings.resolve_url(settings.ledger_url), migrate=False) as ledger, ledger.read() as s:
        held = night_queries.quarantined_in_run(s, run_id)
    for q in held[:EVENTS_PER_NIGHT]:
        emit_event(
            f"{MATTER_EVENT_PREFIX}.quarantined",
            resource={"prefect.resource.id": f"{MATTER_EVENT_PREFIX}.{q.source}.{q.project_id}",
                      "prefect.resource.name": mask_text(f"{q.source}/{q.project_id}"),
                      "guidang.night": run_id, "guidang.source": q.source},
            related=[{"prefect.resource.id": f"{NIGHT_EVENT_PREFIX}.{run_id}", "prefect.resource.role": "night",
                      "prefect.resource.name": name}],
            payload={"reasons": q.codes, "messages": [mask_text(m) for m in q.messages[:5]],
                     "agency": mask_text(q.agency)},
        )
    return len(held)


# ---------------------------------------------------------------- artifacts


def agency_rows(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    from ledger.store import Ledger

    with Ledger(settings.resolve_url(settings.ledger_url), migrate=False) as ledger, ledger.read() as s:
        return [{k: mask_text(v) if isinstance(v, str) else v for k, v in row.items()}
                for row in night_queries.by_agency(s, run_id)]


def report_markdown(summary: dict[str, Any], windows: dict[str, tuple[datetime, datetime, bool]],
                    zone: str) -> str:
    """The night's report: what the console prints, plus the window each source covered, the bytes,
    the DA/T 93 batch keys and the chain head an auditor checks the ledger against."""
    from night.report import summary_markdown

    tz = ZoneInfo(zone)
    out = [summary_markdown(summary), "", "## Window 时间窗口", ""]
    for name, (since, until, backfill) in windows.items():
        out.append(f"- **{name}**: {since.astimezone(tz).isoformat()} → {until.astimezone(tz).isoformat()}"
                   + (" (backfill: the watermark stays)" if backfill else ""))
    stored = summary.get("stored") or {"packages": summary["totals"].get("archived", 0),
                                       "bytes": summary["totals"].get("bytes", 0)}
    out += ["", "## Stored 存储", "", f"- packages: {stored['packages']}", f"- bytes: {stored['bytes']}"]
    out += ["", "## DA/T 93 transfer batches 移交批次", ""]
    out += [f"- {batch}: `{transfer_key(batch)}/`" for batch in summary.get("transfer_batches") or []] or [
        "- none this night"]
    ledger = summary.get("ledger")
    if ledger:
        out += ["", "## Ledger 台账", "", f"- events: {ledger['events']}", f"- chain head: `{ledger['chain_head']}`"]
    return mask_text("\n".join(out))
