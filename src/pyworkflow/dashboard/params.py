"""What a request asks for: the run filter, page size and cursor of a listing, from its query.

The runs page and ``/api/runs`` read the same parameters, so a page's URL and its API call say
the same thing: ``status`` (repeatable), ``workflow``, ``since``/``until`` (a duration back from
now such as ``1h``, or an ISO 8601 date-time; without an offset, UTC), ``schedule`` (the id of
the schedule that started the runs), ``tag`` (repeatable: runs carrying every tag given),
``run_id`` (an id prefix), ``limit`` (1..500) and
``before`` (the previous page's ``next_before``). A bad value is an ``InputError`` naming the
parameter; the caller answers it with 400.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from pyworkflow.durations import parse_duration
from pyworkflow.events import RunStatus
from pyworkflow.exceptions import InputError, InvalidDurationError
from pyworkflow.inspect import RunFilter

__all__ = ["MAX_LIMIT", "RunQuery", "parse_moment", "run_query"]

MAX_LIMIT = 500
"""The most runs one page lists."""

_DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A listing's filter, page size and cursor, with the query text that asked for them.

    Attributes:
        filter: which runs.
        limit: runs per page.
        before: the cursor (a run id), or None for the newest page.
        given: the filter's parameters as given (for links to the next page and to the API).
    """

    filter: RunFilter
    limit: int
    before: str | None
    given: tuple[tuple[str, str], ...]

    def link(self, **changes: str | None) -> str:
        """This query as URL query text, with ``changes`` (None drops a parameter)."""
        kept = [(k, v) for k, v in self.given if k not in changes]
        kept += [(k, v) for k, v in changes.items() if v is not None]
        return urlencode(kept)


def parse_moment(name: str, text: str, now: float) -> float:
    """Epoch seconds from a duration back from ``now`` (``1h``) or an ISO 8601 date-time.

    Raises:
        InputError: neither (the message names the parameter).
    """
    try:
        return now - parse_duration(text)
    except InvalidDurationError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"{name}={text!r} is neither a duration (30m, 1h, 2d) nor an ISO date-time "
            "(2024-05-01T12:00:00Z)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = [v for v in params.get(name, ()) if v.strip()]
    if len(values) > 1:
        raise InputError(f"{name} is given {len(values)} times; give it once")
    return values[0].strip() if values else None


def run_query(params: Mapping[str, Sequence[str]], now: float | None = None) -> RunQuery:
    """The listing a query asks for (``params``: each name with all its values).

    Raises:
        InputError: an unknown status, a bad time or limit (naming the parameter).
    """
    now = time.time() if now is None else now
    statuses = []
    for value in params.get("status", ()):
        if not value:
            continue
        try:
            statuses.append(RunStatus(value))
        except ValueError:
            known = ", ".join(s.value for s in RunStatus)
            raise InputError(f"status={value!r} is not a run status; one of {known}") from None
    since, until = _one(params, "since"), _one(params, "until")
    limit_text = _one(params, "limit")
    limit = _DEFAULT_LIMIT
    if limit_text is not None:
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise InputError(f"limit={limit_text!r} is not a whole number from 1 to {MAX_LIMIT}")
        limit = int(limit_text)
    tags = [t.strip() for t in params.get("tag", ()) if t.strip()]
    for tag in tags:
        if "," in tag:
            # Tags hold no comma (``@workflow(tags=...)`` refuses one): no run could match.
            raise InputError(f"tag={tag!r} holds a comma; give each tag as its own tag=")
    wanted = RunFilter(
        statuses=tuple(dict.fromkeys(statuses)),
        workflow=_one(params, "workflow"),
        since=None if since is None else parse_moment("since", since, now),
        until=None if until is None else parse_moment("until", until, now),
        schedule=_one(params, "schedule"),
        run_id_prefix=_one(params, "run_id"),
        tags=tuple(dict.fromkeys(tags)),
    )
    given = [("status", s.value) for s in wanted.statuses]
    given += [("tag", t) for t in wanted.tags]
    for name in ("workflow", "since", "until", "schedule", "run_id"):
        text = _one(params, name)
        if text is not None:
            given.append((name, text))
    if limit_text is not None:
        given.append(("limit", str(limit)))
    return RunQuery(wanted, limit, _one(params, "before"), tuple(given))
