"""What a local executor serves: every queue, some queues, or nothing (a client-only process).

A worker claims only runs of the queues it serves (storage filters the claim on the run's
``queue`` column). A process that starts a run of a queue it does not serve, or any run when it
is client only, stores the run for a worker instead of driving it, and says so in the log once
per queue, so a run that waits for a worker that does not exist is not a mystery.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from pyworkflow import registry
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import PyWorkflowError
from pyworkflow.queues import check_queues
from pyworkflow.storage.protocol import Storage

__all__ = ["Serving"]


@dataclass
class Serving:
    """The queues a local executor executes runs of, and whether it executes any at all.

    Attributes:
        queues: the queues served, in the order given; None serves every queue (the test
            environment, and executors built by hand).
        client_only: True: this process executes nothing; it starts, queries, cancels and
            resumes runs and delivers hooks, and workers execute the runs.
    """

    queues: tuple[str, ...] | None = None
    client_only: bool = False
    _noted: set[str] = field(default_factory=set)
    _unknown_logged: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, queues: Collection[str] | None, *, client_only: bool) -> Serving:
        """Check the queue names and build.

        Raises:
            ConfigurationError: no queue, or a bad queue name (the message says which).
        """
        if queues is None:
            return cls(None, client_only)
        listed = queues if isinstance(queues, str) else tuple(queues)
        return cls(check_queues(listed, source="LocalExecutor(queues=...)"), client_only)

    def serves(self, queue: str) -> bool:
        """Whether this process executes runs of ``queue``."""
        return not self.client_only and (self.queues is None or queue in self.queues)

    def describe(self) -> str:
        """The queues served, for messages: ``"billing, pyworkflow"``, ``"every queue"``."""
        if self.client_only:
            return "no queue (client only)"
        return "every queue" if self.queues is None else ", ".join(self.queues)

    def note_stored_for_worker(self, queue: str, log: logging.Logger) -> None:
        """Log, once per queue, that a run started here waits for a worker of ``queue``."""
        if queue in self._noted:
            return
        self._noted.add(queue)
        if self.client_only:
            log.info(
                "client only: runs started here (queue %r) are stored for a worker serving it",
                queue,
                extra={"queue": queue},
            )
            return
        log.info(
            "runs of queue %r are stored for a worker serving it; this process serves %s",
            queue,
            self.describe(),
            extra={"queue": queue},
        )

    def warn_idle_queues(self, log: logging.Logger) -> None:
        """Warn about served queues that no workflow registered here goes to (a worker's start).

        Such a queue is served in vain: claims take only runs of workflows registered here,
        so a mistyped ``-Q biling`` would otherwise leave the ``billing`` runs waiting quietly.
        """
        names = registry.workflow_names()
        if self.queues is None or self.client_only or not names:
            return
        routed = sorted({registry.get_workflow(name).queue for name in names})
        idle = [queue for queue in self.queues if queue not in routed]
        if idle:
            log.warning(
                "no workflow registered here goes to queue %s: no run of it is executed here "
                "(the workflows here go to %s)",
                ", ".join(repr(q) for q in idle),
                ", ".join(repr(q) for q in routed),
            )

    async def log_foreign_runs(self, storage: Storage, log: logging.Logger) -> None:
        """Log, once per workflow, live runs of workflows not registered here (at ``serve``).

        They are never claimed here: they wait for a worker that has their workflow.
        """
        active = [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUSPENDED]
        try:
            runs = await storage.list_runs(statuses=active, limit=1000)
        except PyWorkflowError as exc:
            log.warning("could not list waiting runs: %s", exc)
            return
        known = set(registry.workflow_names())
        for run in runs:
            name = run.workflow_name
            if name not in known and name not in self._unknown_logged:
                self._unknown_logged.add(name)
                log.warning(
                    "workflow %r is not registered here; leaving its runs to a worker that has it",
                    name,
                    extra={"workflow": name},
                )
