"""The small interface every source connector implements.

A connector yields matters completed in a window and streams a document's bytes on request; it
never writes anything. Transient faults (network, 5xx, timeouts) raise `SourceUnavailable` after
the connector's own retries, so the flow leaves those matters pending instead of quarantining them;
a record that is wrong in itself is yielded as an `InvalidMatter` and goes to quarantine. Both
error types live in `schemas.errors`, so the packager can catch them without importing connectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

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

    def close(self) -> None: ...
