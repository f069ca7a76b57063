"""Alembic environment of the evidence store, configured programmatically.

APEX runs migrations itself (``apex.store.migrate``): it opens a connection, takes the migration
lock inside a transaction and passes that connection as ``config.attributes["connection"]``, so
the version check and every step run under the lock, in one transaction. There is no alembic.ini
and no offline (``--sql``) mode.
"""

from __future__ import annotations

from alembic import context

from apex.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the store's migrations through apex.store.migrate (apex db upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
