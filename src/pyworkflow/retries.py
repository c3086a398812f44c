"""Retry policies: how many times a step runs again, and how long to wait in between.

``@step(max_retries=3, retry_delay="exponential")`` becomes a :class:`RetryPolicy`, validated
when the decorator runs so a bad option fails at import with the step's qualified name.
``max_retries=3`` means four attempts in all. ``retry_delay`` is one of:

* ``"exponential"``: 1 s, 2 s, 4 s, 8 s ... after the 1st, 2nd, 3rd, 4th failure, capped at
  :data:`EXPONENTIAL_CAP_SECONDS`;
* a duration (``"30s"``, ``5``, ``timedelta(minutes=1)``): the same wait after every failure;
* a non-empty list or tuple of durations: the wait after the n-th failure is the n-th entry,
  and the last entry repeats.

A ``RetryableError(retry_after=...)`` raised by the step overrides the delay; that is the
engine's concern, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import InvalidDurationError, StepDefinitionError

__all__ = ["EXPONENTIAL_CAP_SECONDS", "RetryDelay", "RetryPolicy"]

EXPONENTIAL_CAP_SECONDS = 300.0
"""The longest wait ``retry_delay="exponential"`` produces, in seconds."""

RetryDelay = Literal["exponential"] | float | tuple[float, ...]
"""A normalized ``retry_delay``: ``"exponential"``, fixed seconds, or seconds per attempt."""

# 2 ** 9 = 512 > 300: from the 10th failure on the exponential delay is the cap, and we never
# compute 2 ** huge.
_EXPONENT_AT_CAP = 9


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed step attempt is retried, and after how long.

    Build it with :meth:`from_options`, which accepts everything ``@step`` does and normalizes
    durations to seconds; the constructor takes the normalized form only.

    Attributes:
        max_retries: retries after the first attempt; ``0`` means run once.
        retry_delay: ``"exponential"``, a fixed number of seconds, or a tuple of seconds per
            failed attempt (the last repeats).

    Example:
        >>> policy = RetryPolicy.from_options(2, ["1s", "10s"], where="app.send_email")
        >>> [policy.delay_for(n) for n in (1, 2, 3)]
        [1.0, 10.0, 10.0]
        >>> policy.allows_retry_after(3)
        False
    """

    max_retries: int = 3
    retry_delay: RetryDelay = "exponential"

    def __post_init__(self) -> None:
        # Also accept durations here ("30s", ints, a list), so direct construction is safe.
        _check_max_retries(self.max_retries, label="RetryPolicy")
        object.__setattr__(self, "retry_delay", _normalize(self.retry_delay, "RetryPolicy"))

    @classmethod
    def from_options(cls, max_retries: int, retry_delay: object, *, where: str) -> RetryPolicy:
        """Validate ``@step`` options and build the policy.

        Args:
            max_retries: an ``int >= 0`` (not a bool).
            retry_delay: ``"exponential"``, a duration accepted by
                :func:`~pyworkflow.durations.parse_duration`, or a non-empty list or tuple of
                such durations.
            where: the step's qualified name, quoted in error messages.

        Returns:
            The policy, with every duration converted to seconds.

        Raises:
            StepDefinitionError: naming ``where`` and the bad value.
        """
        label = f"step {where!r}"
        _check_max_retries(max_retries, label=label)
        return cls(max_retries=max_retries, retry_delay=_normalize(retry_delay, label))

    @property
    def max_attempts(self) -> int:
        """Attempts in all: the first one plus ``max_retries``."""
        return self.max_retries + 1

    def delay_for(self, failed_attempt: int) -> float:
        """The wait in seconds before retrying after attempt ``failed_attempt`` failed.

        Args:
            failed_attempt: the number of the attempt that failed, 1-based.

        Returns:
            Seconds to wait before the next attempt.

        Raises:
            ValueError: if ``failed_attempt < 1``.
        """
        if failed_attempt < 1:
            raise ValueError(f"failed_attempt must be >= 1, got {failed_attempt!r}")
        delay = self.retry_delay
        if isinstance(delay, str):
            if failed_attempt - 1 > _EXPONENT_AT_CAP:
                return EXPONENTIAL_CAP_SECONDS
            return min(float(2 ** (failed_attempt - 1)), EXPONENTIAL_CAP_SECONDS)
        if isinstance(delay, tuple):
            return delay[min(failed_attempt, len(delay)) - 1]
        return delay

    def allows_retry_after(self, failed_attempt: int) -> bool:
        """Whether another attempt may run after attempt ``failed_attempt`` (1-based) failed.

        Args:
            failed_attempt: the number of the attempt that failed, 1-based.

        Returns:
            True while ``failed_attempt < max_attempts``.
        """
        return failed_attempt < self.max_attempts


def _check_max_retries(value: object, *, label: str) -> None:
    if type(value) is not int or value < 0:
        raise StepDefinitionError(
            f"{label}: max_retries={value!r} is not valid; use an int >= 0 (0 runs the step once)"
        )


def _normalize(value: object, label: str) -> RetryDelay:
    if isinstance(value, str) and value == "exponential":
        return "exponential"
    if isinstance(value, list | tuple):
        if not value:
            raise StepDefinitionError(
                f"{label}: retry_delay={value!r} is empty; give at least one duration, "
                "e.g. ['1s', '10s']"
            )
        return tuple(_seconds(item, value, label) for item in value)
    return _seconds(value, value, label)


def _seconds(value: object, option: object, label: str) -> float:
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except InvalidDurationError as exc:
        item = f" (item {value!r} is not a duration)" if value is not option else ""
        raise StepDefinitionError(
            f"{label}: retry_delay={option!r} is not valid{item}; use 'exponential', "
            "a duration such as '30s' or 5, or a non-empty list of durations"
        ) from exc
