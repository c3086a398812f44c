"""The classes of ``pyworkflow.exceptions``, by family; import them from there."""
