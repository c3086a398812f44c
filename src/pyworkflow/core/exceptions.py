"""``pyworkflow.core.exceptions``: the pyworkflow documentation's path to the error classes.

Code written for that documentation imports ``FatalError``, ``RetryableError`` ... from here;
every name of ``pyworkflow.exceptions`` is here, the same classes (``except`` clauses written
either way catch the same errors).
"""

from pyworkflow.exceptions import *  # noqa: F403 (an alias: every name, whatever it grows)
from pyworkflow.exceptions import __all__ as __all__
