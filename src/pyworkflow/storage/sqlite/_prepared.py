"""Prepared statements: a Core statement compiled once for SQLite and run on the DBAPI cursor.

Why this exists: ``Connection.execute`` spends ~25 us of Python per statement (parameter and
result processing) where the driver needs ~5 us, and an append runs two statements per step.
So every statement of a fixed shape is compiled once (:func:`prepared`) and the session hands
its SQL text and laid-out parameters straight to the driver's cursor (``_session.py``).

What to watch for: only statements of a fixed shape qualify (an expanding ``IN`` list changes
the text with the list's length: :func:`prepared` says None, and the session goes through
``Connection.execute``); rows come back as plain tuples, values as the driver reads them (a
boolean as 0 or 1); driver errors surface unwrapped (the storage translates them at its
boundary either way).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["Prepared", "prepared"]


class Prepared:
    """One statement's SQLite text, and how to lay out its parameters for the driver."""

    __slots__ = ("literals", "names", "procs", "text")

    def __init__(
        self,
        text: str,
        names: tuple[str, ...],
        literals: dict[str, Any],
        procs: dict[str, Any],
    ) -> None:
        self.text, self.names, self.literals, self.procs = text, names, literals, procs

    def args(self, params: Any) -> tuple[Any, ...]:
        """The driver's positional parameters for ``params`` (the caller's ``b_*`` values)."""
        values = {**self.literals, **params} if self.literals else params
        if self.procs:
            procs = self.procs
            values = {
                k: v if v is None or k not in procs else procs[k](v) for k, v in values.items()
            }
        return tuple(values[name] for name in self.names)


# Compiled once per statement (statements are module constants or cached per shape, so this
# stays small); None: the statement cannot be prepared.
_PREPARED: dict[sa.Executable, Prepared | None] = {}


def prepared(statement: sa.Executable, dialect: sa.Dialect) -> Prepared | None:
    """``statement`` compiled for SQLite, or None when its text depends on its parameters."""
    try:
        return _PREPARED[statement]
    except KeyError:
        pass
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    found: Prepared | None = None
    if compiled.positional and not any(bind.expanding for bind in compiled.binds.values()):
        # Values the statement holds itself (the 0 of a CASE, a NULL it sets) became parameters
        # with a value; the caller's are the ones it requires.
        literals = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
        procs = dict(getattr(compiled, "_bind_processors", {}))
        found = Prepared(compiled.string, tuple(compiled.positiontup), literals, procs)
    _PREPARED[statement] = found
    return found
