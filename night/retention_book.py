"""Retention-table versions kept in the ledger, and the choice of the version in force on a date.

An archivist imports a table; the ledger stores it (content hash, importer, time, effective date)
only when it validates. A matter is judged by the newest version effective on its completion date,
so importing a new table never changes how an already-archived matter was decided.
"""

from __future__ import annotations

import bisect
import getpass
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from guidang_io.crashpoints import crashpoint
from ledger import chain, queries, store
from ledger.models import RetentionVersion
from retention import RetentionTable, load_table
from retention.load import RowsRead
from schemas.config import Settings
from schemas.findings import Finding, GuidangError, errors

CONFIG_EFFECTIVE = date(1900, 1, 1)  # a table taken from guidang.yaml is in force for every matter


class RetentionTableInvalid(GuidangError):
    """The table has errors; nothing was imported."""


class NoVersionInForce(GuidangError):
    """A 办结时间 before every stored version: that matter's fault (or its source's date), not the night's."""


@dataclass
class RetentionBook:
    """The imported versions, ordered by effective date; `table_for` picks the one in force."""

    effective: list[date]
    tables: list[RetentionTable]

    def table_for(self, on: date) -> RetentionTable:
        i = bisect.bisect_right(self.effective, on) - 1
        if i < 0:
            raise NoVersionInForce(
                f"no retention-table version is in force on {on} (the earliest is effective from {self.effective[0]})"
            )
        return self.tables[i]


class EffectiveDateConflict(GuidangError):
    """The same table imported again with another effective date: refused, never silently ignored."""


def import_table(
    ledger: store.Ledger, path: Path, *, effective: date | None = None, imported_by: str | None = None,
    progress: RowsRead | None = None,
) -> tuple[RetentionVersion, list[Finding], bool]:
    """Validate and store a version. Returns (version, warnings, created); the same content twice is
    one version (created=False). Raises RetentionTableInvalid with every error when the table has any.
    `progress` is told how far the rows have been read and checked (retention.load_table)."""
    loaded = load_table(path, progress=progress)
    table, findings = loaded.table, loaded.findings
    if errors(findings):
        raise RetentionTableInvalid(
            f"{path}: {len(errors(findings))} error(s); nothing imported\n" + "\n".join(map(str, errors(findings))),
            findings)
    with ledger.transaction() as s:
        # the label is allocated under the event chain's lock (taken first, held to the commit): two
        # imports side by side take turns, and the second counts the first (the label is unique too)
        chain.lock_chain(s)
        existing = queries.retention_version_by_hash(s, table.content_hash)
        if existing is not None:
            if effective is not None and effective.isoformat() != existing.effective_date:
                raise EffectiveDateConflict(
                    f"{path}: this table is already stored as {existing.label}, in force from "
                    f"{existing.effective_date}; its effective date is not changed to {effective.isoformat()}, "
                    f"because matters already appraised under {existing.label} would then have been judged "
                    f"by a table not yet in force. Nothing imported.")
            return existing, findings, False
        version = RetentionVersion(
            label=f"v{queries.retention_version_count(s) + 1}",
            content_hash=table.content_hash,
            file_name=path.name,
            imported_by=imported_by or _who(),
            imported_at=datetime.now(UTC),
            effective_date=(effective or date.today()).isoformat(),
            rule_count=len(table.rules),
            records=table.to_records(),
        )
        return store.record_retention_version(s, version), findings, True


def versions(ledger: store.Ledger) -> list[RetentionVersion]:
    with ledger.read() as s:
        return list(queries.retention_versions(s))


def table_of(version: RetentionVersion) -> RetentionTable:
    return RetentionTable.from_records(version.records, version=version.label)


def find_version(ledger: store.Ledger, label_or_hash: str) -> RetentionVersion:
    for v in versions(ledger):
        if label_or_hash in (v.label, v.content_hash) or (
            len(label_or_hash) >= 8 and v.content_hash.startswith(label_or_hash)
        ):
            return v
    raise GuidangError(f"no retention-table version {label_or_hash!r} in the ledger")


def load_book(ledger: store.Ledger, settings: Settings, *, dry_run: bool = False) -> RetentionBook:
    """The versions in the ledger; on first use, the table named in guidang.yaml is imported.

    A dry run imports nothing: it judges by the configured table as it would be imported (v1)."""
    vs = versions(ledger)
    if not vs and settings.retention.table and dry_run:
        path = settings.resolve(settings.retention.table)
        loaded = load_table(path, version="v1")
        if errors(loaded.findings):
            raise RetentionTableInvalid(
                f"{path}: {len(errors(loaded.findings))} error(s)\n" + "\n".join(map(str, errors(loaded.findings))),
                loaded.findings)
        return RetentionBook([CONFIG_EFFECTIVE], [loaded.table])
    if not vs and settings.retention.table:
        import_table(
            ledger,
            settings.resolve(settings.retention.table),
            effective=CONFIG_EFFECTIVE,
            imported_by="guidang.yaml (first run)",
        )
        crashpoint("retention-imported")
        vs = versions(ledger)
    if not vs:
        raise GuidangError(
            "no retention table: import one with `guidang retention import FILE` "
            "or name it under retention.table in guidang.yaml"
        )
    ordered = sorted(vs, key=lambda v: (v.effective_date, v.id))
    return RetentionBook([date.fromisoformat(v.effective_date) for v in ordered], [table_of(v) for v in ordered])


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
