"""``pyworkflow.core``: a package path the pyworkflow documentation's code imports from.

Only ``pyworkflow.core.exceptions`` lives here, an alias of ``pyworkflow.exceptions``; our
own code and docs import from ``pyworkflow`` and ``pyworkflow.exceptions``.
"""

__all__: list[str] = []
