"""matters waiting for their unit's enablement

Revision ID: 0004
Revises: 0003_web_overview
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import ledger.models


revision = '0004'
down_revision = '0003_web_overview'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('waiting',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=128), nullable=False),
    sa.Column('agency', sa.String(length=255), nullable=False),
    sa.Column('agency_code', sa.String(length=64), nullable=True),
    sa.Column('matter_type', sa.String(length=16), nullable=False),
    sa.Column('service_code', sa.String(length=64), nullable=False),
    sa.Column('completed_at', ledger.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source_updated_at', ledger.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', ledger.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('resolved_at', ledger.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waiting')),
    sa.UniqueConstraint('source', 'project_id', name=op.f('uq_waiting_source_project_id'))
    )
    op.create_index('ix_waiting_open', 'waiting', ['source', 'resolved_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_waiting_open', table_name='waiting')
    op.drop_table('waiting')
