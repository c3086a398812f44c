"""Alembic environment of pyworkflow, driven by pyworkflow.storage.sql.migrate (no alembic.ini).

Online, the caller hands over a SQLAlchemy Connection in ``config.attributes["connection"]``;
when that connection is already inside a transaction (SQLite's ``BEGIN IMMEDIATE``), the
migrations run in it and the caller commits. Offline (``--sql``), the URL comes from the
``sqlalchemy.url`` option.
"""

from __future__ import annotations

from alembic import context

from pyworkflow.storage.sql.schema import metadata

config = context.config

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "pyworkflow migrations run through pyworkflow.storage.sql.migrate.upgrade_to_head() "
            "or `pyworkflow db upgrade`, which pass a connection"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; later migrations use op.batch_alter_table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
