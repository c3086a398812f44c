"""Schedules, privately: their specs, slots, policies, views and what users call.

What a schedule is (``specs``), when its slots fall (``slots``), what a slot does under an
overlap policy (``policy``), how a schedule reads (``views``), the decorator (``decorated``),
the versioned writes behind the public functions (``changes``, ``starting``) and a script's
scheduler (``activation``). The public names are ``pyworkflow.schedules``'s; the tick that
fires schedules is ``_engine/scheduler.py``.
"""
