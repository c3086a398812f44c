"""The SQL backends' shared half: the schema, its migrations, and every write script, once.

SQLite (``storage/sqlite/``) and PostgreSQL (``storage/postgres/``) store the same tables
(:mod:`~pyworkflow.storage.sql.schema`, built by the Alembic migrations of
:mod:`~pyworkflow.storage.sql.migrate`) and run the same scripts:

- ``_statements/``: every statement, in dialect-neutral SQLAlchemy Core.
- ``_scripts/``: one script per method of the Storage protocol (create a run, append, claim,
  deliver a hook, take a step lease, prune ...): the values it binds (``_params.py``), the
  statements it runs, how its rows become records (``_decoding.py``) and how a refusal is
  explained (``_refusals.py``), each written once.
- :class:`Session` (``_session.py``): what a script asks of a dialect. Primitives run one
  statement (``first``, ``all``, ``execute``, ``insert``, ``query``); steps are the parts of a
  script that a dialect may do in another shape: ``advance_run``, ``insert_run``,
  ``reopen_run``, ``deliver``, ``claim``, ``take_due``, ``delete_ended``, ``wake``. Their
  default bodies run the shared statements one after the other inside the script's
  transaction (SQLite); PostgreSQL overrides them with single statements composed from the
  same pieces (one round trip, its notifications, ``FOR UPDATE SKIP LOCKED``).
- :class:`SqlStorage` (``_storage.py``): the Storage protocol, each method running one script
  through ``_run`` (``_script_runner.py``); its methods of leases, step leases, lease owners,
  schedules and streams are its bases (``_lease_methods.py`` ... ``_stream_methods.py``).

What a new dialect implements (MySQL, say: a package under ``storage/`` and one line in
``storage/_backends.py``):

1. a :class:`Session`: the five primitives on its driver, and overrides of the steps where
   the defaults do not hold (``claim`` and ``take_due`` assume nothing comes between their two
   statements; a dialect without ``INSERT ... ON CONFLICT`` overrides ``insert_run`` and takes
   the step-lease upsert from ``_statements/step_leases.py``);
2. a :class:`SqlStorage` subclass: ``open`` and ``close`` (connections, creating or migrating
   the schema with :func:`~pyworkflow.storage.sql.migrate.upgrade_to_head`), and ``_run``: a
   script on a session, inside one transaction when it writes, with its driver's errors
   translated into StorageError; group commit, if any, lives there too;
3. ``from_url``, the class method ``storage_from_url`` calls.
"""

from __future__ import annotations

from pyworkflow.storage.sql._session import COMPOSITE_STEPS, Row, Session
from pyworkflow.storage.sql._storage import Script, SqlStorage

__all__ = ["COMPOSITE_STEPS", "Row", "Script", "Session", "SqlStorage"]
