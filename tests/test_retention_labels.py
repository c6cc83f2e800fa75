"""Retention-table version labels stay unique when imports run side by side (each its own ledger
connection, as separate `guidang retention import` processes): allocated under the chain's lock,
and constrained in the ledger. Real PostgreSQL and SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from ledger.models import RetentionVersion
from ledger.store import Ledger, LedgerError
from night.retention_book import import_table, versions
from retention import write_table_xlsx
from tests.dbservers import fresh_database
from tests.test_retention_cli import GOOD_ROWS

IMPORTS = 4


def _tables(tmp_path: Path) -> list[Path]:
    paths = []
    for n in range(IMPORTS):
        rows = [dict(r) for r in GOOD_ROWS]
        rows[0]["依据"] = f"规范 第{n}版"  # different content: a different version each
        path = tmp_path / f"table-{n}.xlsx"
        write_table_xlsx(path, rows)
        paths.append(path)
    return paths


def _side_by_side(url: str, tables: list[Path]) -> list[str]:
    Ledger(url).close()  # the schema first, as the first night makes it
    barrier = threading.Barrier(len(tables))
    labels: list[str] = []
    failures: list[BaseException] = []

    def one(path: Path) -> None:
        try:
            with Ledger(url) as ledger:
                barrier.wait()
                version, _warnings, created = import_table(ledger, path)
                assert created
                labels.append(version.label)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(p,)) for p in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    return labels


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_imports_get_distinct_labels(backend: str, tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        labels = _side_by_side(url, tables)
    else:
        with fresh_database("postgresql") as url:
            labels = _side_by_side(url, tables)
            with Ledger(url) as ledger:
                assert sorted(v.label for v in versions(ledger)) == sorted(labels)
                with pytest.raises(LedgerError) as caught, ledger.transaction() as s:  # the ledger refuses a second v1
                    first = versions(ledger)[0]
                    s.add(RetentionVersion(label=first.label, content_hash="x" * 64, file_name="forged.xlsx",
                                           imported_by="t", imported_at=first.imported_at,
                                           effective_date=first.effective_date, rule_count=0, records=[]))
                assert isinstance(caught.value.__cause__, IntegrityError)
    assert sorted(labels) == [f"v{n}" for n in range(1, IMPORTS + 1)]
