"""The PostgreSQL backend (``postgresql://user@host/db``): one database for any number of workers.

Needs asyncpg (``pip install 'pyworkflow-durable[postgres]'``). What PostgreSQL adds to the SQL
backends' shared writes (``storage/sql/``): the asyncpg pool and reconnection
(``_connections.py``), writes in one round trip (``_one_trip.py``, ``_effects.py``), group commit
of appends and run creations in shared statements (``_group.py``, ``_appends.py``,
``_creates.py``), claims with ``FOR UPDATE SKIP LOCKED``, and LISTEN/NOTIFY (``_listen.py``).
"""

from __future__ import annotations

from pyworkflow.storage.postgres._storage import PostgresStorage

__all__ = ["PostgresStorage"]
