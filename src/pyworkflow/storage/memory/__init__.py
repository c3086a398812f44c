"""The memory backend (``memory://``): the Storage protocol kept in a few dicts of one process.

For tests, scripts and the test toolkit; it persists nothing and shares nothing between
processes. It is also the reference semantics of the contract suite (tests/contract): every
rule of ``protocol.py`` is written here as plainly as possible, so that a disagreement between
it and a SQL backend points at the SQL.
"""

from __future__ import annotations

from pyworkflow.storage.memory._storage import MemoryStorage

__all__ = ["MemoryStorage"]
