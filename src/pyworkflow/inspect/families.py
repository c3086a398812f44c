"""Run families: the child runs a run started, and the continue-as-new chain it belongs to.

A run's children are the runs it started with ``start_child_workflow`` (from its workflow code
or its steps), with the runs their continue-as-new started; they page newest first, as run
listings do. A chain is followed through each run's ``continued_from``/``continued_to`` links
both ways, first run to last. A run of the chain that retention has deleted ends the walk
there: the runs next to it still say where the chain went on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyworkflow.exceptions import InputError
from pyworkflow.inspect.runs import RunView, cursor_of, stored_run
from pyworkflow.inspect.values import decode, jsonable
from pyworkflow.serialization import Codec
from pyworkflow.storage import RunRecord, Storage

__all__ = ["ChainLink", "ChildrenPage", "RunChain", "get_chain", "list_children"]


@dataclass(frozen=True, slots=True)
class ChildrenPage:
    """One page of a run's children, newest first.

    Attributes:
        run_id: the parent run.
        children: the child runs of this page; each has its ``parent_close_policy``.
        next_before: the id to pass as ``before`` for the next (older) page; None on the last.
    """

    run_id: str
    children: list[RunView]
    next_before: str | None

    def to_json(self) -> dict[str, Any]:
        """``{"run_id", "children": [run, ...], "next_before"}`` (a run: ``RunView``)."""
        return {
            "run_id": self.run_id,
            "children": [r.to_json() for r in self.children],
            "next_before": self.next_before,
        }


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One run of a continue-as-new chain, with the arguments it was started with.

    Attributes:
        run: the run.
        arguments: its decoded ``{"args": [...], "kwargs": {...}}``, or ``Undecodable``.
        given: True for the run the chain was asked for.
    """

    run: RunView
    arguments: Any
    given: bool

    def to_json(self) -> dict[str, Any]:
        """The run's keys (``RunView``) with ``args`` and ``given``."""
        return {**self.run.to_json(), "args": jsonable(self.arguments), "given": self.given}


@dataclass(frozen=True, slots=True)
class RunChain:
    """A continue-as-new chain, first run to last.

    Attributes:
        run_id: the run it was asked for.
        links: the runs still stored, first to last (within ``reach`` of the run, if given).
        cut_before, cut_after: True when the walk stopped at ``reach`` that way: the chain goes
            on past the first / last link (they say where: ``continued_from`` / ``_to``).
    """

    run_id: str
    links: list[ChainLink]
    cut_before: bool = False
    cut_after: bool = False

    @property
    def pruned_before(self) -> str | None:
        """The run before the first one shown, which is no longer stored; or None."""
        return None if self.cut_before else self.links[0].run.continued_from

    @property
    def pruned_after(self) -> str | None:
        """The run after the last one shown, which is no longer stored; or None."""
        return None if self.cut_after else self.links[-1].run.continued_to

    def to_json(self) -> dict[str, Any]:
        """``{"run_id", "chain": [link, ...]}``, first run to last (a link: ``ChainLink``)."""
        return {"run_id": self.run_id, "chain": [link.to_json() for link in self.links]}


async def list_children(
    storage: Storage, run_id: str, *, limit: int = 50, before: str | None = None
) -> ChildrenPage:
    """One page of the runs ``run_id`` started, newest first.

    Example:
        >>> page = await list_children(storage, parent_id, limit=20)
        >>> [(c.workflow, c.status.value, c.parent_close_policy) for c in page.children]
        [('audit', 'suspended', 'abandon'), ('charge', 'completed', 'cancel')]

    Args:
        storage: an opened storage.
        run_id: the parent run.
        limit: children per page.
        before: ``next_before`` of the previous page.

    Raises:
        RunNotFoundError: ``run_id`` (or ``before``) names no run.
    """
    await stored_run(storage, run_id)
    cursor = await cursor_of(storage, before)
    rows = await storage.list_runs(parent_run_id=run_id, limit=limit + 1, before=cursor)
    page = [RunView.from_record(r) for r in rows[:limit]]
    return ChildrenPage(run_id, page, page[-1].run_id if len(rows) > limit else None)


async def get_chain(
    storage: Storage, run_id: str, *, codec: Codec, reach: int | None = None
) -> RunChain:
    """The continue-as-new chain ``run_id`` belongs to, first run to last.

    A run that never continued is a chain of one. Each link costs one read, so a page that
    shows a chain of any length passes ``reach``: at most that many runs each way.

    Example:
        >>> chain = await get_chain(storage, run_id, codec=Codec())
        >>> [link.run.status.value for link in chain.links]
        ['continued_as_new', 'continued_as_new', 'completed']

    Raises:
        RunNotFoundError: no such run.
    """
    if reach is not None and (isinstance(reach, bool) or reach < 0):
        raise InputError(f"reach must be 0 or more, not {reach!r}")
    given = await stored_run(storage, run_id)
    seen = {run_id}
    earlier = await _follow(storage, given, lambda r: r.continued_from, seen, reach)
    later = await _follow(storage, given, lambda r: r.continued_to, seen, reach)
    links = [
        ChainLink(RunView.from_record(r), decode(codec, r.args), r.run_id == run_id)
        for r in (*reversed(earlier), given, *later)
    ]
    return RunChain(
        run_id,
        links,
        cut_before=reach is not None
        and len(earlier) == reach
        and links[0].run.continued_from is not None,
        cut_after=reach is not None
        and len(later) == reach
        and links[-1].run.continued_to is not None,
    )


async def _follow(
    storage: Storage,
    start: RunRecord,
    link: Callable[[RunRecord], str | None],
    seen: set[str],
    reach: int | None,
) -> list[RunRecord]:
    """The runs ``link`` leads to from ``start``, nearest first, at most ``reach`` of them.

    Stops at a run no longer stored (pruned) and, should the links ever loop, at a run seen
    before, so that a damaged chain is shown rather than walked forever.
    """
    found: list[RunRecord] = []
    record = start
    while (
        (reach is None or len(found) < reach)
        and (next_id := link(record)) is not None
        and next_id not in seen
    ):
        following = await storage.get_run(next_id)
        if following is None:
            break
        seen.add(next_id)
        found.append(following)
        record = following
    return found
