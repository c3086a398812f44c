"""``WorkflowEnvironment``: workflows on a virtual clock, for tests.

The environment is the real engine, not a simulation: a ``LocalExecutor`` over a real storage
(in memory by default, a SQLite file on request), with its clock swapped for a
``VirtualClock``. While it is open, the public API (``pyworkflow.start``, ``run``,
``get_workflow_result`` ...) uses it; on exit the process's own configuration comes back.

Three settings make the virtual clock safe to skip:

- the horizon is infinite, so a waiting run keeps its coroutine (DESIGN §2.6) and skipping a
  week costs no replay;
- leases last a century and the claim loop does not poll: nobody else competes for the runs,
  and the only deadlines the clock sees are the runs' own timers (and retry delays);
- storage calls and step attempts report to the clock as work (``_tracking``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from pyworkflow import client, hooks
from pyworkflow._engine.context import current_step
from pyworkflow._engine.engine import EngineSettings
from pyworkflow._engine.hook_tokens import derive_token
from pyworkflow.durations import resolve_wake_time
from pyworkflow.events import EventType
from pyworkflow.exceptions import ConfigurationError, InputError
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.runtime import Runtime, use_runtime
from pyworkflow.serialization import Codec
from pyworkflow.storage import MemoryStorage, Storage, storage_from_url
from pyworkflow.testing._clock import VirtualClock
from pyworkflow.testing._tracking import StepOverrides, TrackedStorage
from pyworkflow.workflow import Workflow

__all__ = ["WorkflowEnvironment"]

P = ParamSpec("P")
R = TypeVar("R")

_YEAR = 365 * 86400.0
# Leases outlast any test, so the executor's own runs never look abandoned and their renewals
# (every third of a lease) never come due; the clock does not skip to deadlines that far off.
_LEASE_SECONDS = 100 * _YEAR
_MAX_SKIP = 25 * _YEAR


class _EnvironmentExecutor(LocalExecutor):
    """A LocalExecutor whose callers, while they wait for a run to end, let time skip."""

    def __init__(self, storage: Storage, codec: Codec, clock: VirtualClock) -> None:
        super().__init__(
            storage,
            codec,
            clock=clock,
            settings=EngineSettings(lease_seconds=_LEASE_SECONDS, horizon_seconds=math.inf),
            poll_interval=math.inf,
            # Leaving the environment hands its runs back at once: a test's steps do not
            # outlive it (a test of draining configures a runtime of its own).
            drain_seconds=0.0,
            # Schedules fire at their due times and when created or changed here: no polling
            # (nothing else writes this storage), so the clock skips a year of slots.
            schedule_poll=math.inf,
        )
        self._virtual_clock = clock

    async def wait_finished(self, run_id: str, within: float | None) -> None:
        """Wait for the run to end, skipping time whenever nothing works meanwhile.

        A step waiting this way (on a child it started) stops counting as work meanwhile.
        """
        clock = self._virtual_clock
        in_step = current_step.get() is not None
        with clock.autojumping(), clock.waiting() if in_step else contextlib.nullcontext():
            await super().wait_finished(run_id, within)


class WorkflowEnvironment:
    """The engine on a virtual clock: a week of sleeps takes milliseconds.

    While a caller awaits a run's result (``env.run``, ``env.result``, or the public API inside
    the block), time skips to the next timer whenever nothing is working: no step running, no
    storage call in flight, no workflow turn under way. It never moves during work, so races
    between steps and sleeps resolve the same way every time. ``advance`` moves it by hand.

    Example:
        >>> async with WorkflowEnvironment() as env:  # doctest: +SKIP
        ...     started = env.now()
        ...     env.override_step(send_email, lambda to, subject, body: {"id": "fake"})
        ...     assert await env.run(onboarding, "user-42") == {"id": "fake"}
        ...     assert env.now() - started >= timedelta(days=7)

    Args:
        storage: a Storage object, or a URL (``memory://``, ``sqlite:///path.db``); default a
            fresh ``MemoryStorage``. A storage built from a URL is closed on exit.
        start_time: an aware datetime the virtual clock starts at; default the wall clock.
        codec: how values are encoded; default ``Codec()`` (pickle allowed, unsigned).

    Raises:
        ConfigurationError: an unknown storage URL scheme.
        InputError: a naive ``start_time``.

    One environment at a time: inside it, ``configure()`` would replace it. Runs left waiting
    in a SQLite file by an earlier environment are picked up when one opens on the file.
    """

    def __init__(
        self,
        storage: Storage | str | None = None,
        *,
        start_time: datetime | None = None,
        codec: Codec | None = None,
    ) -> None:
        if start_time is not None and start_time.utcoffset() is None:
            raise InputError(
                f"start_time {start_time!r} is naive; pass an aware datetime (tzinfo=UTC)"
            )
        self._owns_storage = storage is None or isinstance(storage, str)
        if storage is None:
            storage = MemoryStorage()
        elif isinstance(storage, str):
            storage = storage_from_url(storage)
        self._storage = storage
        self._codec = codec or Codec()
        self.clock = VirtualClock(
            None if start_time is None else start_time.timestamp(), max_skip=_MAX_SKIP
        )
        """The environment's ``VirtualClock``; the executor and storage queries read it."""
        self._overrides = StepOverrides(self.clock)
        self._exit: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> WorkflowEnvironment:
        if self._exit is not None:
            raise ConfigurationError("this WorkflowEnvironment is already open")
        stack = contextlib.AsyncExitStack()
        try:
            await self._storage.open()
            if self._owns_storage:
                stack.push_async_callback(self._storage.close)
            stack.push_async_callback(self.clock.aclose)
            tracked = cast(Storage, TrackedStorage(self._storage, self.clock))
            executor = _EnvironmentExecutor(tracked, self._codec, self.clock)
            executor.engine.resolve_step = self._overrides.resolve
            stack.push_async_callback(executor.shutdown)
            loop = asyncio.get_running_loop()
            runtime = Runtime(storage=tracked, codec=self._codec, executor=executor, loop=loop)
            stack.enter_context(use_runtime(runtime))
            # A worker from the start: an earlier process may have left runs here.
            executor.serve_in_background()
        except BaseException:
            await stack.aclose()
            raise
        self._exit = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit = self._exit, None
        if stack is not None:
            await stack.aclose()

    # --- runs ------------------------------------------------------------------------------------

    async def start(
        self,
        wf: Workflow[..., Any] | str,
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Start a run and return its id at once; see ``pyworkflow.start``."""
        self._check_open()
        return await client.start(wf, *args, idempotency_key=idempotency_key, **kwargs)

    async def run(self, wf: Workflow[P, R], *args: Any, **kwargs: Any) -> R:
        """Start a run and return its result, skipping time while it waits.

        Raises:
            WorkflowFailedError: the run failed.
            WorkflowCancelledError: the run was cancelled.
        """
        self._check_open()
        return await client.run(wf, *args, **kwargs)

    async def result(self, run_id: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (pyworkflow.get_workflow_result's name)
        """Wait for the run to end, skipping time while it waits, and return its result.

        Args:
            run_id: the run.
            timeout: real (wall-clock) seconds to wait, a guard against a run that waits on
                nothing the environment can fire; None waits for as long as it takes.

        Raises:
            RunNotFoundError: no such run.
            WorkflowFailedError: the run failed.
            WorkflowCancelledError: the run was cancelled.
            TimeoutError: ``timeout`` passed first.
        """
        self._check_open()
        return await client.get_workflow_result(run_id, timeout)

    async def get_run(self, run_id: str) -> client.WorkflowRun:
        """The run's status, timestamps and result or error; see ``pyworkflow.get_workflow_run``.

        Raises:
            RunNotFoundError: no such run.
        """
        self._check_open()
        return await client.get_workflow_run(run_id)

    async def events(self, run_id: str) -> list[client.WorkflowEvent]:
        """The run's event log so far, in order.

        Raises:
            RunNotFoundError: no such run.
        """
        self._check_open()
        return await client.get_workflow_events(run_id)

    # --- time ------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The virtual time, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), UTC)

    async def advance(self, duration: str | float | timedelta | datetime) -> None:
        """Move time forward and let everything that comes due run, then return.

        Timers fire in order, and the work each one starts (steps, writes, workflow turns)
        finishes before the next fires and before this returns, so the caller sees a settled
        state. ``advance(0)`` just lets the work under way finish.

        Example:
            >>> run_id = await env.start(reminder, "ada")  # doctest: +SKIP
            >>> await env.advance("1h")  # doctest: +SKIP
            >>> (await env.get_run(run_id)).status  # doctest: +SKIP
            <RunStatus.SUSPENDED: 'suspended'>

        Args:
            duration: ``"1h"``, ``"7d"``, seconds, a ``timedelta``, or an aware datetime to
                advance to (one in the past just settles).

        Raises:
            InvalidDurationError: ``"5 parsecs"``, ``"-1s"``, a naive datetime ...
        """
        target = resolve_wake_time(duration, self.clock.now())
        self._check_open()
        await self.clock.advance(max(0.0, target - self.clock.now()))

    # --- hooks -----------------------------------------------------------------------------------

    async def hook_token(self, run_id: str, name: str) -> str:
        """The token of the run's waiting hook ``name``: what its ``on_created`` was given.

        Lets a test deliver a payload without capturing the token. Work under way settles first.

        Raises:
            InputError: the run has no hook of that name waiting.
        """
        self._check_open()
        await self.clock.advance(0)
        created: dict[str, str] = {}
        for event in await self._storage.load_events(run_id):
            payload = event.payload
            if event.type is EventType.HOOK_CREATED and payload["name"] == name:
                created[payload["hook_id"]] = payload["nonce"]
            elif event.type in (EventType.HOOK_RECEIVED, EventType.HOOK_EXPIRED):
                created.pop(payload["hook_id"], None)
        if not created:
            raise InputError(f"run {run_id!r} has no hook named {name!r} waiting")
        hook_id, nonce = next(iter(created.items()))
        return derive_token(self._codec.signing_key, run_id, hook_id, nonce)

    async def resume_hook(self, run_id: str, name: str, payload: Any = None) -> None:
        """Deliver ``payload`` to the run's waiting hook ``name``, then let the run go on.

        The same path as ``pyworkflow.resume_hook`` (typed payloads are validated), with the
        token looked up for you.

        Example:
            >>> run_id = await env.start(expense, "r-1")  # doctest: +SKIP
            >>> await env.resume_hook(run_id, "approval", {"approved": True})  # doctest: +SKIP

        Raises:
            InputError: the run has no hook of that name waiting.
            InvalidHookPayloadError: the payload does not fit a typed hook.
        """
        token = await self.hook_token(run_id, name)
        await hooks.resume_hook(token, payload)
        await self.clock.advance(0)

    # --- steps and storage -----------------------------------------------------------------------

    def override_step(self, step: Any, fake: Any) -> None:
        """Run ``fake`` instead of the step's function when the engine executes the step.

        The step keeps its name, retries and timeout, and its events are logged as usual; only
        the function an attempt calls changes. ``fake`` may be async or a plain function, and
        takes the step's arguments. A step awaited outside a workflow is not affected.

        Example:
            >>> fake = lambda to, subject, body: {"id": "test"}
            >>> env.override_step(send_email, fake)  # doctest: +SKIP

        Raises:
            InputError: ``step`` is not a ``@step`` function, or ``fake`` is not callable.
        """
        self._overrides.override(step, fake)

    @property
    def storage(self) -> Storage:
        """The environment's storage, to look at runs and events directly."""
        return self._storage

    def _check_open(self) -> None:
        if self._exit is None:
            raise ConfigurationError(
                "the WorkflowEnvironment is not open; use `async with WorkflowEnvironment() as "
                "env:` (or the workflow_env fixture)"
            )
