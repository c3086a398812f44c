"""tox's inline plugin: find the Pythons that pyenv installed but did not put on PATH.

tox looks for ``python3.12`` on PATH, where pyenv has only a shim that fails unless 3.12 is
the selected version. This makes ``--discover`` default to pyenv's builds of 3.11 to 3.13
(under ``$PYENV_ROOT``, else ``~/.pyenv``), so ``tox -e py312`` finds one; elsewhere, or
with an explicit ``--discover``, it changes nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tox.config.cli.parser import ToxParser
from tox.plugin import impl


@impl
def tox_add_option(parser: ToxParser) -> None:
    """Default every sub-command's ``--discover`` to pyenv's Python 3.11 to 3.13 builds."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(str(p) for p in root.glob("versions/3.1[123].*/bin/python3.1[123]"))
    if not found:
        return
    # argparse keeps sub-commands in a private action; tox adds --discover to each of them.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                for option in command._actions:
                    if option.dest == "discover" and not option.default:
                        option.default = found
