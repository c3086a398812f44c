"""`pyworkflow` run in the test process, for the hooks and run-family tests.

Those tests call the real command (``pyworkflow.cli.main``, options parsed by click) through
click's CliRunner, ~0.5 s a call cheaper than a subprocess. A command configures pyworkflow,
puts the working directory on ``sys.path`` and sends the ``pyworkflow`` logger to the stderr it
was given; ``InProcessCli`` puts all three back after each call, so the rest of the suite sees
this process as it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pyworkflow import config
from pyworkflow.cli import main


def _without_settings(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(config, "_settings", config._settings)
    # PYWORKFLOW_HOME stays: the suite's hook token key (conftest.py), not a setting under test.
    for name in [n for n in os.environ if n.startswith("PYWORKFLOW_") and n != "PYWORKFLOW_HOME"]:
        patch.delenv(name)


class InProcessCli:
    """Runs ``pyworkflow *args --storage sqlite:///db`` (or ``--storage url``) in this process."""

    def __init__(self, db: Path, url: str | None = None) -> None:
        self.db = db
        self.url = url or f"sqlite:///{db}"

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        logger = logging.getLogger("pyworkflow")
        saved = (list(logger.handlers), logger.level, logger.propagate)
        with pytest.MonkeyPatch.context() as patch:
            _without_settings(patch)
            patch.setattr(sys, "path", list(sys.path))
            try:
                return CliRunner().invoke(
                    main, [*args, "--storage", self.url], input=stdin, catch_exceptions=False
                )
            finally:
                logger.handlers[:] = saved[0]
                logger.setLevel(saved[1])
                logger.propagate = saved[2]

    def json(self, *args: str) -> Any:
        """The ``--json`` document the command prints; it must succeed."""
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def run(self, use: Callable[[str], Awaitable[Any]]) -> Any:
        """``asyncio.run(use(url))``: seed or drive runs here, pyworkflow's settings put back."""
        with pytest.MonkeyPatch.context() as patch:
            _without_settings(patch)
            return asyncio.run(use(self.url))


@dataclass
class Family:
    """The seeded database: its CLI, the runs by key, the hook tokens by (doc, hook name)."""

    cli: InProcessCli
    ids: dict[str, str]
    tokens: dict[tuple[str, str], str]
