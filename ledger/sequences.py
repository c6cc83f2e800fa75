"""件号 sequences: the gap-free counters a matter's 件号 is drawn from, one per 全宗, 门类, 年度, 保管期限
and 机构问题代码, each a row locked by the transaction that draws from it.

A number is taken in the same transaction as the matter row that uses it, so a rollback returns it
and the sequence stays gap-free; `lock_sequences` locks every sequence a chunk will draw from, in one
order, before the first number is taken, and `take_item_number` then counts on the locked rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from ledger.models import ArchiveSequence
from schemas.errors import InvariantBroken


def allocate_item_number(
    session: Session, *, fonds: str, category_code: str, year: int, retention_period: str, org_code: str
) -> int:
    """One 件号 on its own (numbering takes a chunk's with `lock_sequences` + `take_item_number`)."""
    key = {"fonds": fonds, "category_code": category_code, "year": year,
           "retention_period": retention_period, "org_code": org_code}
    item = take_item_number(lock_sequences(session, [key]), key)
    session.flush()
    return item


SequenceKey = tuple[tuple[str, Any], ...]  # a 件号 sequence's key columns and values, sorted


def lock_sequences(session: Session, keys: Sequence[dict[str, Any]]) -> dict[SequenceKey, ArchiveSequence]:
    """Lock every 件号 sequence a transaction will draw from, in one order, before it draws: two
    processes numbering matters of the same sequences at once then queue instead of deadlocking
    (each would otherwise hold one sequence and wait for the other's, or for the event chain).
    Returns the locked rows, for `take_item_number`."""
    locked: dict[SequenceKey, ArchiveSequence] = {}
    for key in sorted({_sequence_key(k) for k in keys}):
        values = dict(key)
        seq = session.get(ArchiveSequence, values, with_for_update=True)
        if seq is None:
            _insert_if_absent(session, ArchiveSequence, {**values, "last_item": 0})
            seq = session.get(ArchiveSequence, values, with_for_update=True, populate_existing=True)
            if seq is None:
                raise InvariantBroken(f"件号 sequence {values} is missing right after it was inserted")
        locked[key] = seq
    return locked


def take_item_number(locked: dict[SequenceKey, ArchiveSequence], key: dict[str, Any]) -> int:
    """Next 件号 of a sequence that `lock_sequences` locked in this transaction: counted on the
    locked row and written by the transaction's next flush, so numbering a chunk costs no SELECT and
    no flush of its own per matter (it did: a fifth of a small-document night's numbering time)."""
    seq = locked[_sequence_key(key)]
    seq.last_item += 1
    return seq.last_item


def _sequence_key(values: dict[str, Any]) -> SequenceKey:
    return tuple(sorted(values.items()))


def _insert_if_absent(session: Session, model: type[Any], values: dict[str, Any]) -> None:
    """INSERT the row unless its key exists: two workers numbering the first matter of a sequence at
    once must not fail on a duplicate key (the second then locks the first's row and counts on)."""
    table = model.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing())
    elif dialect in ("mysql", "mariadb"):
        session.execute(table.insert().values(**values).prefix_with("IGNORE"))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())
