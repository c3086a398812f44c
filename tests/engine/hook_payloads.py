"""Payload types of the typed hooks in test_hooks.py, in a module of their own.

``resume_hook`` imports a typed hook's payload type by the path stored with the hook; this
module imports no workflow, so a process that imports it (and nothing else of the tests) shows
that validation needs no workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import pydantic


@dataclass
class Reviewer:
    name: str
    level: int


@dataclass
class Approval:
    approved: bool
    reviewer: Reviewer
    amount: float = 0.0


class Shipping(TypedDict):
    address: str
    count: int


class Rating(pydantic.BaseModel):
    score: int
    comment: str
