"""Turning what a user types into values: workflow arguments and time filters.

A value that cannot be used ends the command with one line naming it and showing the accepted
forms (exit 2), before anything is written.

Workflow arguments: ``--arg KEY=VALUE`` (repeatable) reads VALUE as JSON when it parses
(``count=3`` is the number 3, ``tags=["a"]`` a list, ``ok=true`` a bool) and as a plain string
otherwise (``name=world``); a parameter annotated ``str`` always gets the text as typed, so
``--arg zip=01234`` or ``--arg id=42`` stay strings there. ``--args-json`` takes a JSON object
of arguments by name or a JSON list of them in order; ``--arg`` values are added to it by name.

Time filters (``--since``, ``--until``): a duration back from now (``30m``, ``1h``, ``2d``,
``1h30m``) or an ISO 8601 date or date-time (``2024-05-01``, ``2024-05-01T12:00:00Z``); one
without an offset is local time, as in other command-line tools.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pyworkflow.cli.bridge import fail
from pyworkflow.durations import parse_duration
from pyworkflow.exceptions import InvalidDurationError
from pyworkflow.workflow import Workflow

__all__ = ["parse_cli_duration", "parse_moment", "workflow_arguments"]

_ARG_FORMS = (
    "write --arg NAME=VALUE, e.g. --arg user_id=u-1 --arg count=3 (VALUE is read as JSON "
    'when it parses), or --args-json \'{"user_id": "u-1"}\''
)


def _value(text: str, annotation: Any) -> Any:
    if annotation is str or annotation == "str":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _from_json(text: str) -> tuple[list[Any], dict[str, Any]]:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(
            f"--args-json {text!r} is not valid JSON ({exc.msg} at column {exc.colno}); pass a "
            'JSON object of arguments by name, e.g. \'{"user_id": "u-1"}\', or a JSON list '
            "of them in order"
        )
    if isinstance(loaded, dict):
        return [], loaded
    if isinstance(loaded, list):
        return loaded, {}
    fail(
        f"--args-json {text!r} is a JSON {type(loaded).__name__}, not an object or list; pass "
        '\'{"user_id": "u-1"}\' (by name) or \'["u-1"]\' (in order)'
    )


def workflow_arguments(
    definition: Workflow[..., Any], pairs: Sequence[str], args_json: str | None
) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments for a run of ``definition``, checked against it.

    Args:
        definition: the workflow to start.
        pairs: the ``--arg`` values, ``KEY=VALUE`` each.
        args_json: the ``--args-json`` value, if given.

    Returns:
        ``(args, kwargs)`` that bind to the workflow's signature.
    """
    args, kwargs = _from_json(args_json) if args_json is not None else ([], {})
    params = definition.signature.parameters
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            fail(f"--arg {pair!r} is not NAME=VALUE; {_ARG_FORMS}")
        param = params.get(key)
        kwargs[key] = _value(text, param.annotation if param is not None else None)
    signature = definition.signature.replace(return_annotation=inspect.Signature.empty)
    shown = f"{definition.name}{signature}"
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in kwargs if k not in params]
    if unknown and not takes_any:
        # Said first: bind() would only complain about the parameter the typo left missing.
        fail(f"workflow {definition.name!r} has no parameter {unknown[0]!r}; it is {shown}")
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        fail(
            f"workflow {definition.name!r} cannot take these arguments: {exc}; it is {shown}: "
            "pass each as --arg NAME=VALUE, or all as --args-json"
        )
    return args, kwargs


def parse_cli_duration(option: str, text: str) -> float:
    """The seconds of a duration typed for ``option``; a bad one exits 2 with one line.

    ``parse_duration``'s own hint offers a number of seconds or a timedelta, which a program
    can pass; a shell word needs its unit, and this hint says so.
    """
    try:
        return parse_duration(text)
    except InvalidDurationError as exc:
        why = f" ({exc.reason})" if exc.reason else ""
        fail(
            f"{option} {text!r} is not a duration{why}; type a number with its unit: 30s, 5m, "
            "1h30m, 2d or 1w (units ms, s, m, h, d, w, largest first)"
        )


def parse_moment(option: str, text: str, now: float) -> float:
    """The epoch seconds a ``--since``/``--until`` value names.

    Args:
        option: the option's name, for the message.
        text: a duration back from ``now`` or an ISO 8601 date(-time).
        now: the current time, epoch seconds.
    """
    try:
        return now - parse_duration(text)
    except InvalidDurationError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(
            f"{option} {text!r} is neither a duration nor a date-time; use a duration back "
            "from now such as 30m, 1h, 2d or 1h30m, or an ISO date-time such as "
            "2024-05-01T12:00:00Z (without an offset it is local time)"
        )
    if when.tzinfo is None:
        when = when.astimezone()  # no offset given: the user's local time
    return when.timestamp()
