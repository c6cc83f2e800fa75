"""The demo self-built systems on a real database server (PostgreSQL, MariaDB), for the server tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, create_engine, insert, select

from guidang_demo.selfbuilt import System, sjjc_metadata, tzxm_metadata


def system_metadata(system: System, *, fold_case: bool = False) -> MetaData:
    return tzxm_metadata(fold_case=fold_case) if system == "tzxm" else sjjc_metadata(fold_case=fold_case)


def copy_system(system: System, sqlite_path: Path, target_url: str, *, batch: int = 50) -> dict[str, int]:
    """Load a demo system written by `write_tzxm` / `write_sjjc` into another database (PostgreSQL,
    MariaDB) with the same DDL, as that database would have it; returns rows copied per table.

    The target database must exist and hold none of the tables.
    """
    source = create_engine(f"sqlite:///{sqlite_path}")
    target = create_engine(target_url)
    try:
        fold = target.dialect.name == "postgresql"
        src_md, dst_md = system_metadata(system), system_metadata(system, fold_case=fold)
        dst_md.create_all(target)
        copied: dict[str, int] = {}
        with source.connect() as src, target.begin() as dst:
            for src_table in src_md.sorted_tables:
                dst_table = dst_md.tables[src_table.name.lower() if fold else src_table.name]
                names = [(c.name, c.name.lower() if fold else c.name) for c in src_table.columns]
                result = src.execute(select(src_table)).mappings()
                copied[src_table.name] = 0
                while chunk := result.fetchmany(batch):
                    dst.execute(insert(dst_table), [{d: row[s] for s, d in names} for row in chunk])
                    copied[src_table.name] += len(chunk)
        return copied
    finally:
        source.dispose()
        target.dispose()
