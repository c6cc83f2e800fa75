"""The small interface every source connector implements.

A connector yields matters completed in a window and streams a document's bytes on request; it
never writes anything. Transient faults (network, 5xx, timeouts) raise `SourceUnavailable` after
the connector's own retries, so the flow leaves those matters pending instead of quarantining them;
a record that is wrong in itself is yielded as an `InvalidMatter` and goes to quarantine. Both
error types live in `schemas.errors`, so the packager can catch them without importing connectors.

For 应归尽归 a connector also reports the source's own word on what it completed: a count per
实施机构 and 事项类型 (`count_completed`) and, where the source can, the matters one by one
(`list_completed`). Both count every completed matter, including records that will be refused as
invalid: those end in quarantine, and `audit reconcile` must find them there, not missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from schemas.completion import CompletedCount, CompletedItem
from schemas.model import Document, InvalidMatter, Matter


class SourceConnector(Protocol):
    name: str

    def completed_between(self, since: datetime, until: datetime) -> Iterator[Matter | InvalidMatter]:
        """Matters whose updated_at lies in (since, until], oldest first."""
        ...

    def fetch_matter(self, project_id: str) -> Matter | InvalidMatter | None:
        """One matter by 办件编号, for quarantine retries; None when the source no longer has it."""
        ...

    def open_document(self, document: Document) -> Iterator[bytes]:
        """The document's bytes in chunks; raises DocumentUnavailable or SourceUnavailable."""
        ...

    def acknowledge(self, project_id: str, archival_code: str) -> None:
        """归档回传: tell the source the matter is archived (after verification). May do nothing."""
        ...

    def count_completed(self, start: datetime, end: datetime) -> list[CompletedCount]:
        """Matters whose 办结时间 (completed_at) lies in [start, end), counted by the source itself.

        One row per (agency, matter_type), sorted. Raises SourceUnavailable for transient faults
        after the connector's retries, GuidangError naming source and key when the source is not
        configured to count. start/end are aware; the connector converts them for the source."""
        ...

    def list_completed(self, start: datetime, end: datetime) -> Iterator[CompletedItem] | None:
        """The same matters one by one; None when this source is configured with no way to list."""
        ...

    def close(self) -> None: ...
