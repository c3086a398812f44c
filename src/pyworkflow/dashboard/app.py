"""The dashboard's ASGI app: pages, the JSON API, static files and error answers.

``create_app`` builds it over the runtime of the process, which the caller configures first
(``pyworkflow dashboard`` does: storage, ``--module``, no run executed here). Example, serving
it from code::

    pyworkflow.configure(storage="sqlite:///app.db")
    app = create_app(write_token=None)  # read-only
    uvicorn.run(app, host="127.0.0.1", port=8900)
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pyworkflow.dashboard.api import api_routes
from pyworkflow.dashboard.context import Context
from pyworkflow.dashboard.errors import status_of
from pyworkflow.dashboard.guard import Guard
from pyworkflow.dashboard.pages import page_routes, render
from pyworkflow.exceptions import PyWorkflowError

__all__ = ["create_app"]

_SECURITY_HEADERS = {
    # No inline script anywhere: a value that slipped through escaping still could not run.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


async def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PyWorkflowError)
    code = status_of(exc)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=code)
    return await render(request, "error.html", code, title=type(exc).__name__, message=str(exc))


def create_app(*, write_token: str | None = None) -> Starlette:
    """The dashboard over this process's runtime.

    Args:
        write_token: the token writes need (header or login form); None: read-only.
    """
    static = StaticFiles(directory=Path(__file__).with_name("static"))
    app = Starlette(
        routes=[*api_routes(), *page_routes(), Mount("/static", static, name="static")],
        exception_handlers={PyWorkflowError: _error},
        middleware=[Middleware(_SecurityHeaders)],
    )
    app.state.dashboard = Context(Guard(write_token))

    return app


class _SecurityHeaders:
    """Adds ``_SECURITY_HEADERS`` to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(_SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, sending)
