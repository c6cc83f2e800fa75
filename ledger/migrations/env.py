"""Alembic environment: runs on the connection the ledger hands over (no URL in any ini file)."""

from alembic import context

from ledger.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI use: the URL comes from -x url=... so no secret lives in a file
    from sqlalchemy import create_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the ledger URL as: alembic -x url=postgresql://... upgrade head")
    connection = create_engine(url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
