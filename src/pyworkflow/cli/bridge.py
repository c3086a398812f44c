"""The CLI's one sync bridge: each command runs one ``asyncio.run(...)``.

It also draws the line between a user's mistake and a bug: a ``PyWorkflowError`` (an unknown
module, a bad storage URL, a database written by a newer pyworkflow ...) becomes one line on
stderr and exit code 2, like click's own usage errors; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import click

from pyworkflow.exceptions import PyWorkflowError

__all__ = ["USER_ERROR", "fail", "run_command"]

T = TypeVar("T")

USER_ERROR = 2
"""Exit code of a user's mistake (the same as click's usage errors)."""


def fail(message: str, code: int = USER_ERROR) -> NoReturn:
    """Print ``pyworkflow: error: message`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"pyworkflow: error: {one_line}", err=True)
    raise SystemExit(code)


def run_command(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop; a ``PyWorkflowError`` exits 2 with one line.

    Ctrl-C that reaches here (before the command handles SIGINT itself) exits 130, quietly.

    Args:
        coro: the command's body.

    Returns:
        What ``coro`` returns.
    """
    try:
        return asyncio.run(coro)
    except PyWorkflowError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        # Ctrl-C before a command installed its own handler: no traceback for that either.
        raise SystemExit(130) from None
