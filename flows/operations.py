"""The Prefect flows beside the night: the weekly fixity check and the quarantine retry.

Both are the same functions the command line calls (`guidang audit fixity`, `guidang quarantine
retry`), wrapped so that a worker runs them from a deployment and the server records their result
and state: Failed when the check finds a problem or the retry's run failed, so an automation or a
person sees it. Their parameters are plain values; the configuration is read by the process that
runs them (the parameter, else GUIDANG_CONFIG, else ./guidang.yaml).
"""

import logging
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows import prefect_ops
from schemas.config import load_settings
from schemas.findings import GuidangError
from schemas.model import mask_text

log = logging.getLogger("guidang")


def _dated(prefix: str) -> Any:
    def name() -> str:
        return prefect_ops.night_run_name().replace("nightly-", f"{prefix}-", 1)

    return name


@flow(name="fixity_check", flow_run_name=_dated("fixity"))
def fixity_check(config: str | None = None, sample: int | None = None) -> dict[str, Any]:
    """Re-read the repository against the ledger's SM3/SHA-256 (every package, or `sample` at random)
    and record the result in the ledger; the run fails when anything is missing, changed or unexpected."""
    with prefect_ops.guidang_logs_to_server():
        return _fixity(config, sample)


def _fixity(config: str | None, sample: int | None) -> dict[str, Any]:
    settings = load_settings(prefect_ops.config_path(config))
    from custody.repair import check_and_repair
    from ledger.store import Ledger

    outs: dict[str, Any] = {}
    lines: list[str] = []
    problems = 0
    with Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        for copy in ["primary", *(r.name for r in settings.replicas)]:  # each copy, repaired from the others
            result, seq = check_and_repair(ledger, settings, copy, sample=sample)
            out = outs[copy] = result.to_dict() | {"event": seq}
            problems += len(result.findings)
            lines += [f"# Fixity check of {copy} — {'OK' if result.ok else 'FAILED'}", "",
                      *(f"- {k}: {v}" for k, v in out.items() if k not in ("findings", "repaired")),
                      *(f"- `{f.code}` {f.where}: {f.message}" for f in [*result.findings, *result.repaired][:100]),
                      ""]
    create_markdown_artifact(key="fixity-report", markdown=mask_text("\n".join(lines)), description="Fixity check")
    if problems:
        raise GuidangError(f"fixity: {problems} problem(s); see the fixity-report artifact")
    return outs["primary"] if len(outs) == 1 else outs


@flow(name="quarantine_retry", flow_run_name=_dated("quarantine-retry"))
def quarantine_retry(config: str | None = None, entries: list[int] | None = None) -> dict[str, Any]:
    """Put quarantined matters (these entry ids, or every open one) through the stages again."""
    from night.quarantine_retry import retry_quarantined
    from night.report import summary_markdown

    with prefect_ops.guidang_logs_to_server():
        summary = retry_quarantined(load_settings(prefect_ops.config_path(config)), entries)
    create_markdown_artifact(key="quarantine-retry-report", markdown=summary_markdown(
        summary, title="Quarantine retry 隔离区重试"), description="Quarantine retry")
    if summary["status"] != "completed":
        raise GuidangError(f"quarantine retry {summary['run_id']} failed")
    return summary
