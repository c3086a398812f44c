"""Every SQL statement of pyworkflow, written once in dialect-neutral SQLAlchemy Core.

One module per group of the Storage protocol's methods (``runs``, ``appends``, ``leases``,
``hooks``, ``step_leases``, ``retention``), beside the scripts that run them (``_scripts/``).
Keeping the statements apart from the scripts lets a reader see each query whole, and builds
the hot ones once: fixed-shape statements are module constants and statements whose shape
depends on the call (which filters) are cached per shape, with every value a bound parameter
named ``b_*`` (``_terms.param``), so a call only binds and executes; each dialect's session
compiles a statement once and keeps it. PostgreSQL composes some of them into single
statements (``storage/postgres/_one_trip.py``, ``_effects.py``): the conditions stay these.

Invariant kept by every write: a terminal run has ``wake_at`` NULL and no lease. So a
``wake_at`` that is set already means a live run, and the queries for runnable runs
(``leases.runnable_runs``) walk the ``wake_at`` index in order and stop after ``limit`` rows.
"""
