"""The write scripts and reads of the SQL backends, each written once for every dialect.

One module per group of the Storage protocol's methods. A script is an ``async`` function of a
:class:`~pyworkflow.storage.sql._session.Session` and the method's arguments: it lays out the
values (``_params.py``), runs the statements of ``_statements/`` through the session's
primitives and steps, turns rows into records (``_decoding.py``) and, when a write wrote
nothing, explains why (``_refusals.py``). Semantics are the ones in ``protocol.py``'s
docstrings. A script never begins, commits or rolls back: ``SqlStorage._run`` runs it in one
transaction of the dialect, and SQLite may run many in one (group commit).
"""
