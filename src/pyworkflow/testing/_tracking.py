"""What counts as work in the test environment: storage calls and step attempts.

The virtual clock skips time only while nothing works. A storage call may wait on a database
thread and a step may wait on real I/O; in both cases the event loop looks idle while the
environment is not, so both report to the clock: storage through ``TrackedStorage``, steps
through the definition ``StepOverrides.resolve`` hands the engine, which also swaps in fakes.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from pyworkflow.exceptions import InputError
from pyworkflow.step import StepDefinition
from pyworkflow.storage.protocol import Storage
from pyworkflow.testing._clock import VirtualClock

__all__ = ["StepOverrides", "TrackedStorage"]


class TrackedStorage:
    """A storage whose every async call counts as work on the clock; the rest passes through.

    A proxy rather than a subclass, so it fits every backend and every method a backend adds.
    """

    def __init__(self, inner: Storage, clock: VirtualClock) -> None:
        self._inner = inner
        self._clock = clock
        self.wraps = inner
        """The storage counted: the one the environment was given (``storage=`` names it)."""

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        working = self._clock.working

        @functools.wraps(attr)
        async def call(*args: Any, **kwargs: Any) -> Any:
            with working():
                return await attr(*args, **kwargs)

        self.__dict__[name] = call  # found directly from now on, without __getattr__
        return call


class StepOverrides:
    """Fakes for steps, and the wrapper that reports every attempt as work.

    ``resolve`` is the engine's ``resolve_step`` hook: given a step's definition it returns the
    same step (name, retries, timeout) around the function an attempt should run.
    """

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._fakes: dict[str, Callable[..., Any]] = {}
        self._resolved: dict[StepDefinition, StepDefinition] = {}

    def override(self, step: Any, fake: Callable[..., Any]) -> None:
        """Run ``fake`` instead of ``step``'s function from the next attempt on.

        Raises:
            InputError: ``step`` is not a ``@step`` function, or ``fake`` is not callable.
        """
        definition = getattr(step, "__pyworkflow_step__", step)
        if not isinstance(definition, StepDefinition):
            raise InputError(
                f"{step!r} is not a step; pass the function decorated with @step() to override"
            )
        if not callable(fake):
            raise InputError(
                f"the fake for step {definition.name!r} must be callable, not {fake!r}"
            )
        self._fakes[definition.name] = fake
        self._resolved.clear()

    def resolve(self, definition: StepDefinition) -> StepDefinition:
        """The definition an attempt runs: the fake if there is one, reporting work either way."""
        resolved = self._resolved.get(definition)
        if resolved is None:
            fn = self._fakes.get(definition.name, definition.fn)
            resolved = dataclasses.replace(definition, fn=self._tracked(fn))
            self._resolved[definition] = resolved
        return resolved

    def _tracked(self, fn: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
        working = self._clock.working

        async def attempt(*args: Any, **kwargs: Any) -> Any:
            with working():
                result = fn(*args, **kwargs)  # a fake may be a plain function
                if inspect.isawaitable(result):
                    result = await result
                return result

        return attempt
