"""The ledger's tables (SQLAlchemy 2.0 declarative). Migrations under ledger/migrations follow these.

The ledger is what the archive bureau audits and what a re-run trusts: matter rows carry the state
machine (numbered → transferred → verified, or not_in_scope / quarantined), 件号 sequences live in
their own table so allocation is one row lock, and `events` is append-only with each row carrying
the hash of the one before it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from sqlalchemy import JSON, DateTime, Enum, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # MySQL/MariaDB DATETIME drops microseconds unless asked, which would break event hashes.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the ledger; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name in ("sqlite", "mysql", "mariadb") else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


str16 = Annotated[str, 16]
str64 = Annotated[str, 64]
str128 = Annotated[str, 128]
str255 = Annotated[str, 255]
utc = Annotated[datetime, 0]


class MatterState(StrEnum):
    NUMBERED = "numbered"  # passed checks; 件号 and 档号 allocated; not yet in the repository
    TRANSFERRED = "transferred"  # every file written to the repository
    VERIFIED = "verified"  # every file read back and verified; completion marker written
    NOT_IN_SCOPE = "not_in_scope"  # 不归档 by the retention table
    QUARANTINED = "quarantined"  # numbered, then failed a check: keeps its 件号, nothing stored
    DESTROYED = "destroyed"  # 已销毁: content deleted after an approved appraisal; row and 元数据 kept


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        str16: String(16),
        str64: String(64),
        str128: String(128),
        str255: String(255),
        utc: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        # the value ("verified"), not the member's name, in a VARCHAR(16) as before: no CHECK, no
        # native ENUM type, so existing ledgers read as they are and Alembic sees no change
        MatterState: Enum(MatterState, native_enum=False, values_callable=_values, length=16),
    }


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str64] = mapped_column(primary_key=True)
    started_at: Mapped[utc]
    finished_at: Mapped[utc | None]
    status: Mapped[str16]
    parameters: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class Watermark(Base):
    """Per source: every matter updated at or before `value` has reached an end state."""

    __tablename__ = "watermarks"

    source: Mapped[str64] = mapped_column(primary_key=True)
    value: Mapped[utc]
    run_id: Mapped[str64 | None]
    updated_at: Mapped[utc]


class MatterRecord(Base):
    __tablename__ = "matters"
    __table_args__ = (
        UniqueConstraint("source", "project_id", "version"),
        UniqueConstraint("archival_code"),
        Index("ix_matters_fonds_year", "fonds", "year"),
        Index("ix_matters_service_code", "service_code"),
        Index("ix_matters_state", "state"),
        Index("ix_matters_run_overview", "run_id", "state", "agency", "total_bytes"),  # the console's 概览
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str64]
    project_id: Mapped[str128]
    version: Mapped[int] = mapped_column(default=1)  # 2, 3… when the source changed it (补充材料)
    content_hash: Mapped[str64]
    state: Mapped[MatterState]
    service_code: Mapped[str64]
    service_name: Mapped[str255]
    matter_type: Mapped[str16]
    agency: Mapped[str255]
    title: Mapped[str255 | None]
    completed_at: Mapped[utc]
    source_updated_at: Mapped[utc]
    fonds: Mapped[str16 | None]
    year: Mapped[int | None]
    retention_period: Mapped[str16 | None]
    category_code: Mapped[str16 | None]
    org_code: Mapped[str16 | None]
    item_number: Mapped[int | None]
    archival_code: Mapped[str128 | None]
    package_key: Mapped[str255 | None]
    retention_version: Mapped[str64 | None]
    retention_row: Mapped[int | None]
    disposition_date: Mapped[str16 | None]
    file_count: Mapped[int | None]
    total_bytes: Mapped[int | None]
    page_count: Mapped[int | None]
    numbered_at: Mapped[utc | None]
    transferred_at: Mapped[utc | None]
    verified_at: Mapped[utc | None]
    acknowledged_at: Mapped[utc | None]
    batch_id: Mapped[str64 | None]
    run_id: Mapped[str64 | None]
    record: Mapped[dict[str, Any]]  # the canonical Matter as collected, for re-packaging after a crash
    appraisal: Mapped[dict[str, Any]]  # the Appraisal that decided it, for the same reason


class QuarantineEntry(Base):
    __tablename__ = "quarantine"
    __table_args__ = (
        Index("ix_quarantine_open", "source", "project_id", "resolved_at"),
        Index("ix_quarantine_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str64]
    project_id: Mapped[str128]
    content_hash: Mapped[str64 | None]
    source_updated_at: Mapped[utc | None]
    codes: Mapped[list[Any]]
    findings: Mapped[list[Any]]
    record: Mapped[dict[str, Any]]  # the Matter (or the raw source row) needed to retry
    run_id: Mapped[str64 | None]
    created_at: Mapped[utc]
    attempts: Mapped[int] = mapped_column(default=1)
    resolved_at: Mapped[utc | None]
    resolution: Mapped[str | None] = mapped_column(Text)


class ArchiveSequence(Base):
    """The last 件号 given per (全宗, 门类, 年度, 保管期限, 机构问题代码): gap-free by construction."""

    __tablename__ = "archive_sequences"

    fonds: Mapped[str16] = mapped_column(primary_key=True)
    category_code: Mapped[str16] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    retention_period: Mapped[str16] = mapped_column(primary_key=True)
    org_code: Mapped[str16] = mapped_column(primary_key=True)
    last_item: Mapped[int]


class RetentionVersion(Base):
    __tablename__ = "retention_versions"
    __table_args__ = (UniqueConstraint("content_hash"), UniqueConstraint("label", name="uq_retention_versions_label"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    label: Mapped[str64]  # v1, v2…: what packages and reports cite
    content_hash: Mapped[str64]
    file_name: Mapped[str255]
    imported_by: Mapped[str128]
    imported_at: Mapped[utc]
    effective_date: Mapped[str16]  # ISO date from which this version is in force
    rule_count: Mapped[int]
    records: Mapped[list[Any]]


class Event(Base):
    """Append-only audit log; `hash` = SHA-256(prev_hash + canonical JSON of the row)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_archival_code", "archival_code"),
        Index("ix_events_source_project", "source", "project_id"),
        Index("ix_events_at", "at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[utc]
    kind: Mapped[str64]
    run_id: Mapped[str64 | None]
    source: Mapped[str64 | None]
    project_id: Mapped[str128 | None]
    archival_code: Mapped[str128 | None]
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str64]
    hash: Mapped[str64]


class ChainHead(Base):
    """One row locked by every event writer, so two writers (threads or hosts) never fork the chain."""

    __tablename__ = "event_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int]
    hash: Mapped[str64]


class RunLockHolder(Base):
    """Who holds the run lock (ledger/runlock.py), so a refused run can say since when and which run.

    The lock itself is the database's (PostgreSQL advisory lock, MariaDB GET_LOCK) or the OS's (a
    file lock beside a SQLite ledger): it dies with its holder; this row only describes it."""

    __tablename__ = "run_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run_id: Mapped[str64]
    holder: Mapped[str255]  # host and process id, for the operator who wonders where it runs
    since: Mapped[utc]


class WaitingMatter(Base):
    """A completed matter of a unit or 事项类型 not yet enabled for online archiving (ledger/waiting.py).

    Counted, never lost: the first night that finds its unit and type enabled collects it again
    and archives it, and the row is then closed (`resolved_at`) by the end state it reached."""

    __tablename__ = "waiting"
    __table_args__ = (
        UniqueConstraint("source", "project_id"),
        Index("ix_waiting_open", "source", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str64]
    project_id: Mapped[str128]
    agency: Mapped[str255]
    agency_code: Mapped[str64 | None]
    matter_type: Mapped[str16]
    service_code: Mapped[str64]
    completed_at: Mapped[utc]
    source_updated_at: Mapped[utc]
    content_hash: Mapped[str64]
    reason: Mapped[str64]
    first_seen_at: Mapped[utc]
    run_id: Mapped[str64 | None]
    resolved_at: Mapped[utc | None]
    resolution: Mapped[str64 | None]


# A record's life after the transfer: holds (冻结) and disposition reviews (到期鉴定). A hold here is
# the bureau's 冻结 of archived records; it is unrelated to the quarantine's `ledger.holds.Hold`,
# which keeps a rejected matter for a retry.


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
