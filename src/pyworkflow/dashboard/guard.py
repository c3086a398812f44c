"""Who may change runs: the write token, the login cookie and CSRF protection.

Without a write token the dashboard is read-only: every write answers 403 and changes nothing.
With one, a write is allowed when the request carries the token itself (``Authorization:
Bearer T`` or ``X-Pyworkflow-Token: T``, for scripts: a cross-site page cannot set headers) or
the session cookie the login form sets. A request that relies on the cookie must also carry the
CSRF value of that session (a hidden form field ``csrf``, or the ``X-CSRF-Token`` header), which
a page on another site cannot read. Both the cookie and the CSRF value are HMACs of the token,
so no state is kept and a new token signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from starlette.requests import Request

__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "Guard", "Refusal"]

COOKIE = "pyworkflow_dashboard"
"""The session cookie's name."""

CSRF_FIELD = "csrf"
"""The hidden form field carrying the CSRF value."""

CSRF_HEADER = "x-csrf-token"
"""The header carrying the CSRF value (scripts of the dashboard's own pages)."""

_TOKEN_HEADER = "x-pyworkflow-token"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a write is refused: the text the 403 answer carries."""

    reason: str


class Guard:
    """Checks writes against the write token (None: read-only).

    Args:
        write_token: the token writes need; None or empty makes the dashboard read-only.
    """

    def __init__(self, write_token: str | None) -> None:
        self._token = write_token or None

    @property
    def writable(self) -> bool:
        """True when the dashboard was given a write token."""
        return self._token is not None

    def _mac(self, purpose: str) -> str:
        assert self._token is not None
        return hmac.new(self._token.encode(), purpose.encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        """The value of the session cookie the login form sets."""
        return self._mac("pyworkflow-dashboard-session")

    def check_login(self, given: str) -> bool:
        """True when ``given`` is the write token."""
        return self._token is not None and hmac.compare_digest(given.encode(), self._token.encode())

    def signed_in(self, request: Request) -> bool:
        """True when the request carries the session cookie of the current token."""
        cookie = request.cookies.get(COOKIE)
        return (
            self._token is not None
            and cookie is not None
            and hmac.compare_digest(cookie, self.session_value())
        )

    def csrf_value(self) -> str:
        """The CSRF value pages put in their forms (empty when read-only)."""
        return self._mac("pyworkflow-dashboard-csrf") if self._token is not None else ""

    def refusal(self, request: Request, form_csrf: str | None = None) -> Refusal | None:
        """None when the request may write; else why not.

        Args:
            request: the request.
            form_csrf: the ``csrf`` field of its form, if it has one.
        """
        if self._token is None:
            return Refusal(
                "the dashboard is read-only: start it with --write-token (or "
                "PYWORKFLOW_DASHBOARD_TOKEN) to allow changes"
            )
        bearer = request.headers.get("authorization", "")
        given = request.headers.get(_TOKEN_HEADER) or (
            bearer[7:] if bearer.lower().startswith("bearer ") else None
        )
        if given is not None:
            return None if self.check_login(given) else Refusal("wrong write token")
        if not self.signed_in(request):
            return Refusal("sign in with the write token first (or send it as a bearer token)")
        csrf = form_csrf or request.headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(csrf, self.csrf_value()):
            return Refusal("missing or wrong CSRF value: reload the page and try again")
        return None
