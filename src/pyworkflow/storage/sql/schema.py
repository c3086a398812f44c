"""The SQL schema: SQLAlchemy Core tables, the single source of truth for every SQL backend.

SQLite and PostgreSQL share these tables and the statements in ``_statements/``; the Alembic
migrations in ``migrations/`` create exactly this (a test compares a migrated database with
``metadata``).

Values that storage does not interpret (arguments, results, errors, event payloads) are JSON text
in ``Text`` columns, encoded in ``_params.py`` and decoded in ``_decoding.py``. Times are float
seconds since the epoch from the executor's clock.

Hot queries and their indexes:

- runnable runs: ``wake_at <= now`` with a free or expired lease, earliest ``wake_at`` first ->
  ``ix_runs_wake_at``. The engine sets ``wake_at`` NULL on terminal runs, so the index holds only
  live work near its front.
- listing newest first, keyset on ``(created_at, run_id)``, optionally by status or workflow ->
  ``ix_runs_created``, ``ix_runs_status_created``, ``ix_runs_workflow_created``.
- a run's log in ``seq`` order -> the primary key ``(run_id, seq)`` of ``events``.
- a run's children (``list_runs(parent_run_id=)``, and the children an ending run cancels) ->
  ``ix_runs_parent_run_id``.
- a hook by its token -> the primary key ``token_hash`` of ``hooks``; a run's hooks (and
  retention's delete of them) -> ``uq_hooks_run_id_hook_id``; hooks by status, newest first ->
  ``ix_hooks_status_created``.
- a step's lease, a run's step leases (and retention's delete of them) -> the primary key
  ``(run_id, step_id)`` of ``step_leases``.
- a scheduler's tick: schedules with ``due_at <= now`` in ``(due_at, schedule_id)`` order, a
  page at a time from where the last ended, and the earliest ``due_at`` ->
  ``ix_schedules_due_at``. Paused, deleted and finished schedules have ``due_at``
  NULL, so the index front holds only what is due soon.
- a schedule's runs (its live ones for the overlap policy, ``runs list --schedule``) ->
  ``ix_runs_schedule_id``.
- the stream runs a run drives (retention, ``db copy``, ``runs show``) ->
  ``ix_stream_runs_run_id``.
"""

from __future__ import annotations

import sqlalchemy as sa

from pyworkflow.queues import DEFAULT_QUEUE

__all__ = [
    "VERSION_TABLE",
    "events",
    "hooks",
    "metadata",
    "owners",
    "runs",
    "schedules",
    "step_leases",
    "stream_deliveries",
    "stream_runs",
    "stream_signals",
    "stream_subscriptions",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""Every table pyworkflow owns; Alembic's ``target_metadata``."""

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("workflow_name", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("args", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # Invariant (DESIGN §1): one idempotency key names one run, globally, also after it ended.
    sa.Column("idempotency_key", sa.String, nullable=True, unique=True),
    sa.Column("parent_run_id", sa.String, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float, nullable=True),
    # Invariant (DESIGN §2.5): timers are stored absolute wake times, found by an indexed query.
    sa.Column("wake_at", sa.Float, nullable=True),
    # Invariant (DESIGN §2.3): one writer per run, the holder of this lease.
    sa.Column("lease_owner", sa.String, nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("recovery_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    # Invariant (DESIGN §2.3): the seq of the run's last event; appends state the one they expect.
    sa.Column("last_seq", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("signal_seq", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cancel_reason", sa.Text, nullable=True),
    # Child runs and continue-as-new chains (columns after this one came with revision 0002).
    sa.Column("parent_close_policy", sa.String, nullable=True),
    sa.Column("continued_from", sa.String, nullable=True),
    sa.Column("continued_to", sa.String, nullable=True),
    # The queue whose workers execute the run (revision 0005). A claim filters on it while it
    # walks ix_runs_wake_at (``_statements/leases.py`` says why it is not in that index).
    sa.Column("queue", sa.String, nullable=False, server_default=DEFAULT_QUEUE),
    # The schedule that started the run and the slot it is for (revision 0007).
    sa.Column("schedule_id", sa.String, nullable=True),
    sa.Column("schedule_slot_at", sa.Float, nullable=True),
    # ",a,b,": each tag between commas, so that one LIKE finds a tag on every backend.
    sa.Column("tags", sa.String, nullable=True),
    sa.Index("ix_runs_wake_at", "wake_at"),
    sa.Index("ix_runs_created", "created_at", "run_id"),
    sa.Index("ix_runs_status_created", "status", "created_at", "run_id"),
    sa.Index("ix_runs_workflow_created", "workflow_name", "created_at", "run_id"),
    # Counts of one workflow's runs per status read this index alone (revision 0009).
    sa.Index("ix_runs_workflow_status", "workflow_name", "status", "created_at"),
    # Runs by tag: each distinct tags cell found by a walk of this index, then its runs newest
    # first (``_scripts/runs.list_runs``; revision 0009).
    sa.Index("ix_runs_tags", "tags", "created_at", "run_id"),
    sa.Index("ix_runs_parent_run_id", "parent_run_id"),
    sa.Index("ix_runs_schedule_id", "schedule_id", "created_at"),
)
"""One row per run; mirrors ``records.RunRecord`` (same columns, same order: rows are read by
position, ``_decoding.run_from_row``)."""

events = sa.Table(
    "events",
    metadata,
    # Invariant (DESIGN §2.3): (run_id, seq) is unique, so two writers cannot both append seq n.
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
"""The append-only event log, one row per event."""

hooks = sa.Table(
    "hooks",
    metadata,
    # The token itself is never stored: a leaked database cannot resume anyone's hook.
    sa.Column("token_hash", sa.String, primary_key=True),
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("hook_id", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("payload_type", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("received_at", sa.Float, nullable=True),
    sa.UniqueConstraint("run_id", "hook_id", name="uq_hooks_run_id_hook_id"),
    sa.Index("ix_hooks_status_created", "status", "created_at"),
)
"""One row per hook a run created; mirrors ``records.HookRecord``. Written by the run's appends
(creation), ``deliver_hook`` (an outside writer) and ``expire_hook`` (the lease holder)."""

step_leases = sa.Table(
    "step_leases",
    metadata,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("step_id", sa.String, primary_key=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    # Who executes the attempt now: duplicate broker messages for it find the lease taken.
    sa.Column("owner", sa.String, nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    # Invariant (DESIGN §2.5): how often the attempt was taken, so a step that keeps killing
    # its worker is bounded by storage, not by the broker's redelivery count.
    sa.Column("deliveries", sa.Integer, nullable=False, server_default=sa.text("0")),
    # A step of a queue offered to the local workers serving it (``offer_steps``); NULL for a
    # Celery step task's lease, whose broker message is its offer.
    sa.Column("queue", sa.String, nullable=True),
    sa.Column("offered_at", sa.Float, nullable=True),
    sa.Index("ix_step_leases_queue", "queue"),
)
"""One row per step attempt executed away from its run's driver (a Celery step task, or a step
offered to the local workers of its queue); mirrors ``records.StepLease``. Written only by
``offer_steps``, ``acquire_step``, ``renew_step`` and ``release_step`` (revisions 0003, 0006)."""

owners = sa.Table(
    "owners",
    metadata,
    sa.Column("owner", sa.String, primary_key=True),
    # Where it runs: its liveness is observable only from where its dialect can look (SQLite:
    # a lock file on this host; PostgreSQL: a session lock on the server, seen from anywhere).
    sa.Column("host", sa.String, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    # PostgreSQL: the key of the session-level advisory lock its presence connection holds.
    sa.Column("lock_key", sa.BigInteger, nullable=True),
    sa.Column("started_at", sa.Float, nullable=False),
)
"""One row per lease owner (a worker process) that made its liveness observable
(``Storage.announce_owner``); deleted once another process finds it dead and frees what it
held (``take_over_dead_owners``). Revision 0004."""

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("schedule_id", sa.String, primary_key=True),
    sa.Column("workflow_name", sa.String, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("args", sa.Text, nullable=False),
    sa.Column("overlap_policy", sa.String, nullable=False),
    sa.Column("catchup_window", sa.Float, nullable=True),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("next_slot_at", sa.Float, nullable=True),
    # Invariant: a tick is one indexed query on due_at; only active schedules have one.
    sa.Column("due_at", sa.Float, nullable=True),
    sa.Column("buffered", sa.Text, nullable=False),
    sa.Column("total_runs", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("skipped_runs", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_slot_at", sa.Float, nullable=True),
    sa.Column("last_run_id", sa.String, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # Every write states the version it read: two schedulers never both fire one slot.
    sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Index("ix_schedules_due_at", "due_at", "schedule_id"),
)
"""One row per schedule; mirrors ``records.ScheduleRecord`` (same columns, same order).
Revision 0007; ``ix_schedules_due_at`` took ``schedule_id`` in revision 0011."""

stream_runs = sa.Table(
    "stream_runs",
    metadata,
    sa.Column("stream_run_id", sa.String, primary_key=True),
    sa.Column("stream", sa.String, nullable=False),
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    # Signals are numbered per stream run by an UPDATE of this column, which also serialises
    # emitters, takers and the arming of the waiter on this row.
    sa.Column("last_seq", sa.Integer, nullable=False, server_default=sa.text("0")),
    # Invariant: batch n is taken once (a conditional UPDATE from n - 1), so no signal is
    # delivered twice to one subscription, whoever retries.
    sa.Column("last_batch", sa.Integer, nullable=False, server_default=sa.text("0")),
    # The token hash of the hook the driving run waits on, delivered by the next emit.
    sa.Column("wait_hook", sa.String, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_stream_runs_stream_created", "stream", "created_at"),
    # A stream run belongs to the run driving it: pruning, copying and showing a run find its
    # stream runs by this column.
    sa.Index("ix_stream_runs_run_id", "run_id"),
)
"""One row per stream run (``storage/streams.py``). Revision 0010; ``ix_stream_runs_run_id``
revision 0012."""

stream_subscriptions = sa.Table(
    "stream_subscriptions",
    metadata,
    sa.Column("stream_run_id", sa.String, primary_key=True),
    sa.Column("step_name", sa.String, primary_key=True),
    sa.Column("stream", sa.String, nullable=False),
    sa.Column("signal_types", sa.Text, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    # Signals up to this seq were delivered to it or passed over; moved in the transaction
    # that records the delivery.
    sa.Column("seen_seq", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("has_result", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("checkpoint", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("resume_signals", sa.Text, nullable=True),
    sa.Column("deliveries", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("updated_at", sa.Float, nullable=False),
    # Deliveries whose payload failed this step's schema: the step was not run for them.
    sa.Column("refused", sa.Integer, nullable=False, server_default=sa.text("0")),
)
"""One row per stream step of a stream run; mirrors ``SubscriptionRecord``. Revision 0010."""

stream_signals = sa.Table(
    "stream_signals",
    metadata,
    sa.Column("stream_run_id", sa.String, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("signal_id", sa.String, nullable=False),
    sa.Column("stream", sa.String, nullable=False),
    sa.Column("signal_type", sa.String, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("emitted_at", sa.Float, nullable=False),
    sa.Column("source_run_id", sa.String, nullable=True),
    sa.Column("idempotency_key", sa.String, nullable=True),
    sa.UniqueConstraint(
        "stream_run_id", "idempotency_key", name="uq_stream_signals_idempotency_key"
    ),
)
"""The signals of each stream run, numbered 1, 2, 3 ... per stream run. Revision 0010."""

stream_deliveries = sa.Table(
    "stream_deliveries",
    metadata,
    sa.Column("stream_run_id", sa.String, primary_key=True),
    sa.Column("batch", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("step_name", sa.String, primary_key=True),
    # NULL: the step's start, which carries no signal.
    sa.Column("seq", sa.Integer, nullable=True),
    sa.Column("refused", sa.Boolean, nullable=False, server_default=sa.false()),
)
"""Which signal went to which stream step in which batch. Revision 0010."""

VERSION_TABLE = sa.table("alembic_version", sa.column("version_num", sa.String))
"""Alembic's version table, read directly so that opening a database need not import Alembic.

Not part of ``metadata``: Alembic owns it and leaves it out of its comparisons.
"""
