"""The SQLite backend (``sqlite:///path.db``): one file on one machine, shared by its processes.

What SQLite adds to the SQL backends' shared writes (``storage/sql/``): the database thread
that owns the connection (``_thread.py``), group commit of concurrent writes in one
``BEGIN IMMEDIATE ... COMMIT`` (``_batch.py``), the pragmas (WAL, ``synchronous``,
``busy_timeout``) and the translation of sqlite3's errors.
"""

from __future__ import annotations

from pyworkflow.storage.sqlite._storage import SQLiteStorage

__all__ = ["SQLiteStorage"]
