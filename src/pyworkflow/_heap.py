"""Freezing the start-up heap: what the first runtime finds alive, the collector never walks.

Why: a full garbage collection walks every tracked object, and in a process that imported
SQLAlchemy, asyncpg and its own modules, most of them are module-level functions, classes and
dicts that live as long as the process. Python starts a full collection once the objects
promoted since the last one exceed a quarter of those that survived it, and a burst of runs in
flight promotes that many: under load most bursts paid a 40-80 ms walk of that static heap
(B2 on PostgreSQL, ``BENCHMARKS.md``). ``gc.freeze()`` moves what exists into a permanent
generation that no collection walks; objects made later are collected as before.

The cost: a reference cycle among frozen objects is never reclaimed (reference counting still
frees everything else). Freezing once per process, right after a full collection, bounds that
to what was alive when the first runtime started. ``configure(gc_freeze=False)`` or
``PYWORKFLOW_GC_FREEZE=0`` turns it off (a development server that reloads modules, say); a
process that disabled the collector keeps its own policy.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["freeze_startup_heap"]

_log = logging.getLogger("pyworkflow.runtime")
_frozen = False


def freeze_startup_heap() -> bool:
    """Collect garbage, then freeze every object alive now; once per process.

    Returns True if this call froze the heap (False: done before, or the collector is off).
    """
    global _frozen
    if _frozen or not gc.isenabled():
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    _log.debug("froze %d objects of the start-up heap", gc.get_freeze_count())
    return True
