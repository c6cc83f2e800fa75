"""disposition: holds (冻结), appraisal reviews (到期鉴定) and their decisions

Revision ID: 0006_disposition
Revises: 0005_retention_label_unique
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa
import ledger.models


revision = '0006_disposition'
down_revision = '0005_retention_label_unique'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disposition_holds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('selector', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('placed_by', sa.String(length=128), nullable=False),
    sa.Column('placed_at', ledger.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_by', sa.String(length=128), nullable=True),
    sa.Column('released_at', ledger.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disposition_holds'))
    )
    op.create_table('disposition_held_records',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('hold_id', sa.Integer(), nullable=False),
    sa.Column('matter_id', sa.Integer(), nullable=False),
    sa.Column('archival_code', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disposition_held_records')),
    sa.UniqueConstraint('hold_id', 'matter_id', name=op.f('uq_disposition_held_records_hold_id_matter_id'))
    )
    op.create_index('ix_disposition_held_records_matter', 'disposition_held_records', ['matter_id'], unique=False)
    op.create_table('disposition_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('before', sa.String(length=16), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_by', sa.String(length=128), nullable=False),
    sa.Column('opened_at', ledger.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.String(length=128), nullable=True),
    sa.Column('approved_at', ledger.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', ledger.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disposition_reviews'))
    )
    op.create_table('disposition_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('matter_id', sa.Integer(), nullable=False),
    sa.Column('archival_code', sa.String(length=128), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=True),
    sa.Column('new_period', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', ledger.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('outcome_note', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disposition_items')),
    sa.UniqueConstraint('review_id', 'matter_id', name=op.f('uq_disposition_items_review_id_matter_id'))
    )
    op.create_index('ix_disposition_items_matter', 'disposition_items', ['matter_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_disposition_items_matter', table_name='disposition_items')
    op.drop_table('disposition_items')
    op.drop_table('disposition_reviews')
    op.drop_index('ix_disposition_held_records_matter', table_name='disposition_held_records')
    op.drop_table('disposition_held_records')
    op.drop_table('disposition_holds')
