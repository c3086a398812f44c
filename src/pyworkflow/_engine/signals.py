"""Control-flow signals of the engine.

They derive from BaseException (DESIGN §2.7) so that a user's ``except Exception:`` around a step
or a sleep cannot swallow them. Users never construct them.
"""

from __future__ import annotations

__all__ = ["ContinueAsNewSignal", "EvictedSignal"]


class EvictedSignal(BaseException):
    """Raised in workflow code that runs after its activation was let go.

    When a run suspends past the executor's horizon, or ends, its coroutines are cancelled; a
    ``finally:`` block that then calls a primitive gets this signal instead of issuing a command
    nobody will record.
    """


class ContinueAsNewSignal(BaseException):
    """Raised by ``continue_as_new`` to end the workflow code; carries the new run's call.

    Attributes:
        encoded: the encoded ``{"args": [...], "kwargs": {...}}`` of the new run.
    """

    def __init__(self, encoded: object) -> None:
        super().__init__("continue as new")
        self.encoded = encoded
