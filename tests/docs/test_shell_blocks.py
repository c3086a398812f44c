"""Every ``pyworkflow`` command in the shell blocks of README.md and docs/ parses.

The Python blocks of those pages run as tests (conftest.py at the root, Sybil). Shell blocks
cannot run here (they start workers, name production databases), but each ``pyworkflow ...``
command in them is parsed by the real CLI: the command path exists, every option exists and
its value converts where the option has a type (a choice, an integer; durations are
checked when the command runs). A renamed option or a mistyped command
in the docs fails here. Nothing is executed: click parses without invoking the commands.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from pyworkflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(?:bash|console|shell|sh)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SEPARATORS = {"&&", "||", ";", "|", "&"}


def commands_in(page: Path) -> list[tuple[int, list[str]]]:
    """(line, argv) of each ``pyworkflow`` command in the page's shell blocks."""
    text = page.read_text()
    found = []
    for block in SHELL_BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        # Continuation lines join their command, as the shell would.
        source = block.group(1).replace("\\\n", " ")
        for offset, line in enumerate(source.splitlines()):
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words: list[str] = []
            for token in [*lexer, ";"]:
                if token not in SEPARATORS:
                    words.append(token)
                    continue
                if words and words[0] == "pyworkflow":
                    found.append((first_line + offset, words[1:]))
                words = []
    return found


CASES = [
    pytest.param(argv, id=f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for line, argv in commands_in(page)
]


def parse(argv: list[str]) -> list[str]:
    """Parse ``pyworkflow ARGV`` down to its last sub-command; the command path."""
    command: click.Command = main
    ctx = command.make_context("pyworkflow", list(argv))
    path = []
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None, argv
        assert name is not None, argv
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
    assert not ctx.args, f"left over: {ctx.args}"
    return path


def test_the_pages_have_commands_to_check() -> None:
    assert len(CASES) >= 40  # a broken extraction would otherwise check nothing


@pytest.mark.parametrize("argv", CASES)
def test_a_documented_command_parses(argv: list[str]) -> None:
    try:
        path = parse(argv)
    except click.UsageError as exc:
        pytest.fail(f"pyworkflow {shlex.join(argv)}: {exc.format_message()}")
    assert path, argv


def test_a_wrong_option_is_caught() -> None:
    with pytest.raises(click.UsageError, match="--colour"):
        parse(["runs", "list", "--colour", "red"])
    with pytest.raises(click.UsageError):
        parse(["runs", "list", "--status", "sleeping"])
