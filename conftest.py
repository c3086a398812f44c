"""Every Python block of README.md and docs/ runs as a test, so a snippet that stops working fails.

Sybil collects the pages (``testpaths`` in pyproject.toml names them beside tests/). Each
```` ```python ```` block is one test; a page's blocks run in order, in one namespace, like
cells of one script. What a page may say around its blocks (HTML comments, not rendered):

- ``<!-- invisible-code-block: python -->`` ... ``-->``: code that runs but is not shown: the
  fake payment service a snippet calls, or the assertions that check what it printed.
- ``<!-- skip: next "why" -->``: the next block is not run, and is reported as a skipped test
  with that reason (pytest ``-ra`` lists them). Only for what cannot run here, such as a block
  that needs a Celery broker; the reason says where the same calls are tested instead.
- Blocks in other languages (```` ```bash ````, ```` ```toml ````) are not Python and are not
  run; tests/docs checks that every ``pyworkflow`` command in them parses.

Each page runs in a fresh temporary directory (so ``./pyworkflow.db`` lands there), as a module
of its own that ``resume_hook`` can import payload classes from, and afterwards the process is
put back: settings, registered workflows, steps and declared schedules, the runtime, logging
and the directory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Generator
from typing import Any

import pytest
from sybil import Sybil
from sybil.parsers.markdown import ClearNamespaceParser, PythonCodeBlockParser, SkipParser

import pyworkflow
from pyworkflow import config, registry
from pyworkflow._schedules import decorated

_pages = itertools.count(1)
_SAVED = "__docs_page_saved__"


def _open_page(namespace: dict[str, Any]) -> None:
    name = f"docs_page_{next(_pages)}"
    module = types.ModuleType(name)

    def lookup(attribute: str) -> Any:
        try:
            return namespace[attribute]
        except KeyError:
            raise AttributeError(attribute) from None

    # The page's names, seen as attributes of an importable module (PEP 562).
    module.__getattr__ = lookup  # type: ignore[method-assign]
    sys.modules[name] = module
    root = logging.getLogger()
    saved = {
        "cwd": os.getcwd(),
        "tmp": tempfile.mkdtemp(prefix="pyworkflow-docs-"),
        "config": config.snapshot(),
        "workflows": dict(registry._workflows),
        "steps": dict(registry._steps),
        "schedules": dict(decorated._DECLARED),
        "handlers": list(root.handlers),
        "level": logging.getLogger("pyworkflow").level,
        "module": name,
    }
    os.chdir(saved["tmp"])
    namespace.update({"__name__": name, _SAVED: saved})


def _close_page(namespace: dict[str, Any]) -> None:
    saved = namespace[_SAVED]
    try:
        asyncio.run(pyworkflow.shutdown())
    finally:
        config.restore(saved["config"])
        registry._workflows.clear()
        registry._workflows.update(saved["workflows"])
        registry._steps.clear()
        registry._steps.update(saved["steps"])
        # A page's @scheduled_workflow must not be activated by the next page's workers.
        decorated._DECLARED.clear()
        decorated._DECLARED.update(saved["schedules"])
        logging.getLogger().handlers[:] = saved["handlers"]
        logging.getLogger("pyworkflow").setLevel(saved["level"])
        sys.modules.pop(saved["module"], None)
        os.chdir(saved["cwd"])
        shutil.rmtree(saved["tmp"], ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A skipped block is reported at its page and line, not where Sybil raised the skip."""
    report = yield
    example = getattr(item, "example", None)
    if example is not None and report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        page = os.path.relpath(example.path, os.path.dirname(__file__))
        report.longrepr = (page, example.line, reason)
    return report


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser(), ClearNamespaceParser()],
    patterns=["README.md", "docs/*.md", "docs/*/*.md"],
    setup=_open_page,
    teardown=_close_page,
).pytest()
