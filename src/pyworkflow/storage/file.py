"""``pyworkflow.storage.file``: where the pyworkflow documentation imports its file storage.

``FileStorageBackend(base_path="dir")`` keeps runs in SQLite, in ``dir/pyworkflow.db``
(``pyworkflow.storage.seed_backends`` says why); the same class as
``pyworkflow.storage.FileStorageBackend``.
"""

from pyworkflow.storage.seed_backends import FileStorageBackend

__all__ = ["FileStorageBackend"]
