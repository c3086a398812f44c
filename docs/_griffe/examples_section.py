"""A griffe extension for the API reference: our ``Example:`` sections render as code.

The house style (Google docstrings) writes ``Example:`` above ``>>>`` lines; griffe's Google
parser knows only the plural, ``Examples:``, as the section whose ``>>>`` lines are code, and
renders the singular as an admonition of Markdown, where ``>>>`` is a nested quote. This
reads one as the other while the docs are built; the docstrings themselves stay as written.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` section headers to ``Examples:`` in every loaded docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the object's docstring before mkdocstrings parses it."""
        _rewrite(obj)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """The same for a package's own docstring (``pyworkflow/__init__.py``)."""
        _rewrite(pkg)


def _rewrite(obj: griffe.Object) -> None:
    docstring = obj.docstring
    if docstring is not None and "Example:" in docstring.value:
        docstring.value = _SINGULAR.sub(r"\1Examples:", docstring.value)
