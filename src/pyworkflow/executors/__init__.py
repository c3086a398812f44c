"""Executors: where workflow turns run. ``LocalExecutor`` runs them in this process."""

from pyworkflow._engine.clock import Clock, SystemClock
from pyworkflow._engine.engine import EngineSettings
from pyworkflow.executors.local import LocalExecutor
from pyworkflow.executors.protocol import Executor

__all__ = ["Clock", "EngineSettings", "Executor", "LocalExecutor", "SystemClock"]
