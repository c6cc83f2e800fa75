"""Source connectors: the unified system (HTTP JSON) and self-built systems described in guidang.yaml."""

from __future__ import annotations

from pathlib import Path

from connectors.sources.base import SourceConnector
from schemas.config import SqlSource, UnifiedSource


def open_source(config: UnifiedSource | SqlSource, *, base_dir: Path) -> SourceConnector:
    """The connector for one configured source; imports only the driver that source needs."""
    if config.kind == "unified":
        from connectors.sources.unified import UnifiedConnector

        return UnifiedConnector(config)
    from connectors.sources.sql import SqlConnector

    return SqlConnector(config, base_dir=base_dir)
