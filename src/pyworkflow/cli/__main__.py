"""``python -m pyworkflow.cli``: the same as the ``pyworkflow`` console script."""

from pyworkflow.cli import main

main(prog_name="pyworkflow")
