"""retention version labels unique

Revision ID: 0005_retention_label_unique
Revises: 0004
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_retention_label_unique'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Two imports that ran side by side may have taken one label: the later import keeps its rows
    # and gets "<label>-<id>", so that `retention show` can name each version again.
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, label FROM retention_versions ORDER BY id")).all()
    seen: set[str] = set()
    for id_, label in rows:
        if label in seen:
            bind.execute(sa.text("UPDATE retention_versions SET label = :l WHERE id = :i"),
                         {"l": f"{label}-{id_}", "i": id_})
        seen.add(label)
    with op.batch_alter_table('retention_versions', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_retention_versions_label', ['label'])


def downgrade() -> None:
    with op.batch_alter_table('retention_versions', schema=None) as batch_op:
        batch_op.drop_constraint('uq_retention_versions_label', type_='unique')
