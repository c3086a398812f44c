"""The engine tests: a package, so that its modules share steps, workflows and helpers."""

import pytest

# Helpers holding asserts: rewrite them like test modules, so a failure shows the values.
pytest.register_assert_rewrite("engine.recording", "engine.run_log")
