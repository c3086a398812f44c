"""The web dashboard: runs, their timelines, workflows, and the writes an operator needs.

``pyworkflow dashboard --storage URL`` serves it (extra ``dashboard``: Starlette, uvicorn,
Jinja2). It renders the read model of ``pyworkflow.inspect`` (the objects the CLI renders) as
server-side HTML, with a JSON API under ``/api`` described by ``/api/openapi.json``; writes go
through the public API (``pyworkflow.client``, ``pyworkflow.hooks``). It imports neither the
engine nor a storage backend (import-linter contract in pyproject.toml).

Safety: read-only without a write token; writes need the token (header) or the login cookie
plus a CSRF value; every value from storage is escaped; pickles are never decoded without the
configured secret key (``display.py``).
"""

from pyworkflow.dashboard.app import create_app

__all__ = ["create_app"]
