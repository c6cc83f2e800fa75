"""The tables of a record's life after the transfer: holds (冻结) and disposition reviews (到期鉴定).

Kept beside ledger/models.py on the same declarative base (models.py imports this module, so
Alembic and the ledger see one schema). A hold here is the bureau's 冻结 of archived records; it is
unrelated to the quarantine's `ledger.holds.Hold`, which keeps a rejected matter for a retry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models import Base, str16, str128, str255, utc


class DispositionHold(Base):
    """A hold (冻结) placed on archived records: while it is not released, none of them may be decided
    for destruction or destroyed, and on S3 their objects carry a legal hold."""

    __tablename__ = "disposition_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    selector: Mapped[dict[str, Any]]  # how the records were chosen (档号, matter, unit, query)
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str128]
    placed_at: Mapped[utc]
    released_by: Mapped[str128 | None]
    released_at: Mapped[utc | None]
    release_reason: Mapped[str | None] = mapped_column(Text)


class HeldRecord(Base):
    """One archived record under one hold; fixed when the hold is placed."""

    __tablename__ = "disposition_held_records"
    __table_args__ = (
        UniqueConstraint("hold_id", "matter_id"),
        Index("ix_disposition_held_records_matter", "matter_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hold_id: Mapped[int]
    matter_id: Mapped[int]
    archival_code: Mapped[str128]


class DispositionReview(Base):
    """An appraisal (到期鉴定) of the records due before a date: opened, decided record by record by
    appraisers, approved by a second person, then carried out (its 销毁清单 and the destruction)."""

    __tablename__ = "disposition_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    before: Mapped[str16]  # ISO date: records due before it
    criteria: Mapped[dict[str, Any]]  # fonds, unit, matter type it was opened for
    status: Mapped[str16]  # open, approved, destroyed
    opened_by: Mapped[str128]
    opened_at: Mapped[utc]
    approved_by: Mapped[str128 | None]
    approved_at: Mapped[utc | None]
    completed_at: Mapped[utc | None]


class DispositionItem(Base):
    """One record of a review and what was decided for it: destroy, or extend (a new 保管期限)."""

    __tablename__ = "disposition_items"
    __table_args__ = (
        UniqueConstraint("review_id", "matter_id"),
        Index("ix_disposition_items_matter", "matter_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[int]
    matter_id: Mapped[int]
    archival_code: Mapped[str128]
    decision: Mapped[str16 | None]  # destroy, extend
    new_period: Mapped[str16 | None]  # for extend: the new 保管期限 (D30, Y…)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str128 | None]
    decided_at: Mapped[utc | None]
    # extended; destroying (begun: a crash resumes it), destroyed; blocked (a hold or the store refused)
    outcome: Mapped[str16 | None]
    outcome_note: Mapped[str255 | None]
