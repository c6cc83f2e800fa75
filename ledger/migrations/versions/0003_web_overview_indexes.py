"""indexes for the console's nightly overview (per run and unit, GROUP BY in SQL)

Revision ID: 0003_web_overview
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op


revision = '0003_web_overview'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # covering: the overview counts and sums a page of runs' matters by unit without reading the rows
    op.create_index('ix_matters_run_overview', 'matters', ['run_id', 'state', 'agency', 'total_bytes'], unique=False)
    op.create_index('ix_quarantine_run_id', 'quarantine', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_quarantine_run_id', table_name='quarantine')
    op.drop_index('ix_matters_run_overview', table_name='matters')
