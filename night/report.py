"""Run summaries for people: the console table, the Prefect artifacts, the Markdown report.

Each line passes through shown_text on its way out: a source's error quotes what the source said,
which may carry an identity number, credit code or phone number, or a line break of its own."""

from __future__ import annotations

from typing import Any

from night.context import SUMMARY_KEYS
from schemas.findings import code_text
from schemas.masking import shown_text
from schemas.model import mask_text

COLUMNS = SUMMARY_KEYS
HEADERS = {
    "collected": "collected 收集",
    "archived": "archived 归档",
    "quarantined": "quarantined 隔离",
    "not_in_scope": "not in scope 不归档",
    "waiting": "waiting 待启用",
    "unchanged": "unchanged 未变",
    "held": "held 仍隔离",
    "pending": "pending 待续",
    "superseded": "superseded 被取代",
}


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [
        {"source": name, **{c: s.get(c, 0) for c in COLUMNS}, "error": mask_text(s.get("error") or "")}
        for name, s in summary["sources"].items()
    ]
    rows.append({"source": "TOTAL", **{c: summary["totals"].get(c, 0) for c in COLUMNS}, "error": ""})
    return rows


def summary_text(summary: dict[str, Any]) -> str:
    """The plain-text report printed by `guidang run` and `guidang demo`."""
    lines = []
    status = summary.get("status", "?")
    lines.append(
        f"guidang nightly transfer {summary['run_id']}: {status}" + (" (dry run)" if summary["dry_run"] else "")
    )
    width = max([len("source")] + [len(n) for n in summary["sources"]] + [5])
    lines.append("  ".join(["source".ljust(width)] + [HEADERS[c].rjust(len(HEADERS[c])) for c in COLUMNS]))
    for row in summary_rows(summary):
        lines.append("  ".join([row["source"].ljust(width)] + [str(row[c]).rjust(len(HEADERS[c])) for c in COLUMNS]))
    for name, s in summary["sources"].items():
        if s.get("error"):
            lines.append(f"  ! {name}: {s['error']}")
        if s.get("unacknowledged"):
            lines.append(f"  ! {name}: acknowledgement 归档回传 of {s['unacknowledged']} matter(s) failed (the next "
                         f"night retries): {s.get('acknowledge_error') or ''}")
        if s.get("null_updated"):
            column = s.get("update_column") or "update column"
            lines.append(f"  ! {name}: {s['null_updated']} row(s) with a NULL {column} are never collected:"
                         " set it at the source")
        if s.get("unordered"):
            column = s.get("update_column") or "update column"
            names = "; ".join(s["unordered"][:20]) + (" …" if len(s["unordered"]) > 20 else "")
            lines.append(f"  ! {name}: {len(s['unordered'])} row(s) are never collected, their {column} cannot be "
                         f"ordered among dates: {names}")
        for line in s.get("resolved", []):
            lines.append(f"  {name}: resolved {line}")
        for code, n in s.get("quarantine_reasons", {}).items():
            lines.append(f"  {name}: quarantined {n} × {code} {code_text(code)} / {code_text(code, 'en')}")
        if s.get("waiting"):
            lines.append(f"  {name}: {s['waiting']} matter(s) of units or 事项类型 not yet enabled wait 待启用 "
                         "(guidang audit rollout)")
        if s.get("in_quarantine"):
            lines.append(f"  {name}: {s['in_quarantine']} matter(s) held in quarantine 隔离区 "
                         "(guidang quarantine list)")
    for step in steps_failed(summary):
        lines.append(f"  ! {step}")
    if summary.get("dry_run"):
        gb = summary["totals"].get("bytes", 0) / 1e9
        lines.append(f"would archive {summary['totals'].get('archived', 0)} package(s), {gb:.3f} GB")
    else:  # from the ledger: what this run stored and verified, even if it failed afterwards
        stored = summary.get("stored") or {"packages": summary["totals"].get("archived", 0),
                                           "bytes": summary["totals"].get("bytes", 0)}
        lines.append(f"stored {stored['packages']} package(s), {stored['bytes'] / 1e9:.3f} GB")
    if "ledger" in summary:
        lines.append(f"ledger: {summary['ledger']['events']} events, chain head {summary['ledger']['chain_head']}")
    return "\n".join(shown_text(line) for line in lines)  # a source's value cannot add a line


def summary_markdown(summary: dict[str, Any], *, title: str = "Nightly transfer") -> str:
    """The run's report as Prefect shows it; `title` names the kind of run (a quarantine retry is no night)."""
    out = [f"# {title} {summary['run_id']} — {summary.get('status')}", ""]
    out.append("| source | " + " | ".join(HEADERS[c] for c in COLUMNS) + " |")
    out.append("|---|" + "---:|" * len(COLUMNS))
    for row in summary_rows(summary):
        out.append(f"| {row['source']} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    if summary["quarantine_reasons"]:
        out += ["", "## Quarantine reasons 隔离原因", ""]
        for code, n in summary["quarantine_reasons"].items():
            out.append(f"- `{code}` {code_text(code)} ({code_text(code, 'en')}): {n}")
    errors = [(n, s["error"]) for n, s in summary["sources"].items() if s.get("error")]
    steps = steps_failed(summary)
    if errors or steps:
        out += ["", "## Failures", ""] + [f"- **{n}**: {e}" for n, e in errors] + [f"- {e}" for e in steps]
    return "\n".join(shown_text(line) for line in out)


def steps_failed(summary: dict[str, Any]) -> list[str]:
    """The night's failed steps that are not one source's (a transfer batch, a checkpoint)."""
    of_sources = tuple(f"{name}: " for name, s in summary["sources"].items() if s.get("error"))
    return [f for f in summary.get("failures", []) if not f.startswith(of_sources)]
