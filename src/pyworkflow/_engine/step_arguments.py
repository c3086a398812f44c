"""A step call's arguments as the log keeps them, a refusal naming the parameter.

The arguments are encoded as one ``{"args", "kwargs"}`` tree, the way STEP_STARTED logs them.
When that fails, the error of the tree (``arguments of step 'read#1'['args'][0]``) would make
the user count positions, so the call is bound to the step's signature and encoded again one
parameter at a time, only then, to name it: ``argument 'handle' of step 'read#1'``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from pyworkflow.exceptions import SerializationError

if TYPE_CHECKING:
    from pyworkflow.serialization import Codec
    from pyworkflow.step import StepDefinition

__all__ = ["encode_step_call"]


def encode_step_call(
    definition: StepDefinition,
    step_id: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    codec: Codec,
) -> Any:
    """The encoded ``{"args": [...], "kwargs": {...}}`` of a call of a step.

    Raises:
        SerializationError: an argument cannot be encoded; the error names its parameter
            when the call fits the step's signature.
    """
    try:
        return codec.encode(
            {"args": list(args), "kwargs": kwargs}, path=f"arguments of step {step_id!r}"
        )
    except SerializationError as whole:
        try:
            bound = inspect.signature(definition.fn).bind(*args, **kwargs)
        except (TypeError, ValueError):
            raise whole from None  # the call does not fit: the step itself will say so
        for name, value in bound.arguments.items():
            codec.encode(value, path=f"argument {name!r} of step {step_id!r}")
        raise
