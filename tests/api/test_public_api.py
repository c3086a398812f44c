"""Every public name exists, is documented, and __all__ stays sorted (as httpx checks)."""

import importlib
import inspect

import pytest

PUBLIC_MODULES = [
    "pyworkflow",
    "pyworkflow.celery",
    "pyworkflow.dashboard",
    "pyworkflow.executors",
    "pyworkflow.executors.celery",
    "pyworkflow.inspect",
    "pyworkflow.schedules",
    "pyworkflow.storage",
    "pyworkflow.streams",
    "pyworkflow.testing",
    "pyworkflow.tracing",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_is_sorted_and_every_name_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = module.__all__
    assert names == sorted(names)
    missing = [name for name in names if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    undocumented = []
    for name in module.__all__:
        obj = getattr(module, name)
        documentable = inspect.isclass(obj) or inspect.isfunction(obj)
        if documentable and not (obj.__doc__ or "").strip():
            undocumented.append(name)
    assert undocumented == []


def test_exception_tree_roots() -> None:
    import pyworkflow as pw

    for name in pw.__all__:
        obj = getattr(pw, name)
        is_error = inspect.isclass(obj) and issubclass(obj, BaseException)
        if is_error and obj is not pw.PyWorkflowError:
            # Every error is under PyWorkflowError, except the control-flow signal users catch
            # by name, which must not be swallowed by `except Exception:`.
            if obj is pw.CancellationError:
                assert not issubclass(obj, Exception)
            else:
                assert issubclass(obj, pw.PyWorkflowError), name


# The names code written for the pyworkflow documentation imports (README, "Coming from the
# pyworkflow documentation"); each maps onto one of ours.
SEED_NAMES = {
    "pyworkflow": [
        "MaxNestingDepthError",
        "RunContext",
        "StepContext",
        "TransientRunError",
        "get_config",
        "get_context",
        "get_step_context",
        "get_workflow_run_by_idempotency_key",
        "has_step_context",
        "reset_config",
        "set_step_context",
    ],
    "pyworkflow.storage": [
        "FileStorageBackend",
        "InMemoryStorageBackend",
        "PostgresStorageBackend",
        "SQLiteStorageBackend",
    ],
}


@pytest.mark.parametrize("module_name", sorted(SEED_NAMES))
def test_the_seed_names_are_public(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert [n for n in SEED_NAMES[module_name] if n not in module.__all__] == []
