"""A lease owner's presence on SQLite: a locked file beside the database, per owner.

An owner holds an exclusive ``flock`` on ``<database>.owners/<digest>.lock`` for as long as it
lives; the kernel drops the lock when the process dies, however it dies (``kill -9``, out of
memory), while a stopped or slow process keeps it. Another process tests it with a
non-blocking ``flock`` of its own: refused means alive; granted, or the file gone, means dead.
``flock`` locks belong to the open file, so the test works within one process too, and a
process forked from an owner (a Celery pool process) closes its inherited copy at once: it
is not the owner and must not keep the lock alive after the owner died.

Only owners on this host are tested (the ``owners`` row says where each runs): a lock file on a
shared network filesystem says nothing reliable, so another host's owners keep the lease as
their only sign of life. An in-memory database (``:memory:``) has no file and no other
process: an owner is present while this process holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import weakref
from collections.abc import Callable, Sequence

from pyworkflow.exceptions import StorageError
from pyworkflow.storage.sql._session import Row

try:
    import fcntl
except ImportError:  # Windows: no flock; owners there are known only by their leases
    fcntl = None  # type: ignore[assignment]

__all__ = ["LockFiles"]

_ALL: weakref.WeakSet[LockFiles] = weakref.WeakSet()


class LockFiles:
    """The ``Presences`` of a SQLite database (see the module docstring)."""

    def __init__(self, database_path: str) -> None:
        self._dir = None if database_path == ":memory:" else f"{database_path}.owners"
        self._held: dict[str, int] = {}  # owner -> its locked file's descriptor (-1: none)
        _ALL.add(self)

    def _path(self, owner: str) -> str:
        assert self._dir is not None
        digest = hashlib.blake2b(owner.encode(), digest_size=16).hexdigest()
        return os.path.join(self._dir, f"{digest}.lock")

    async def hold(self, owner: str, on_lost: Callable[[], None] | None) -> tuple[int | None, bool]:
        """Lock ``owner``'s file (a flock never drops while the process lives: no gap)."""
        if owner in self._held:
            return None, True
        if self._dir is None or fcntl is None:
            self._held[owner] = -1
            return None, True
        path = self._path(owner)
        try:
            os.makedirs(self._dir, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot create the owner lock file {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"the owner lock file {path} is locked by another process") from exc
        self._held[owner] = fd
        return None, True

    async def drop(self, owner: str) -> None:
        """Remove and unlock ``owner``'s file."""
        fd = self._held.pop(owner, None)
        if fd is None or fd < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._path(owner))
        os.close(fd)  # unlocks

    async def dead_among(self, rows: Sequence[Row]) -> list[str]:
        """The owners of this host whose file is gone or not locked by anyone."""
        here = socket.gethostname()
        dead = []
        for owner, host, _pid, _key in rows:
            if owner in self._held:
                continue
            if self._dir is None or (fcntl is not None and host == here and self._unlocked(owner)):
                dead.append(owner)
        return dead

    def _unlocked(self, owner: str) -> bool:
        assert fcntl is not None
        path = self._path(owner)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return True  # withdrawn, or its taker removed the file already
        except OSError:
            return False  # cannot tell: leave it to its lease
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # held: alive
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
            return True
        finally:
            os.close(fd)

    def _forget_after_fork(self) -> None:
        for fd in self._held.values():
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)  # the parent's lock stays, held by the parent's descriptor
        self._held.clear()


def _after_fork_in_child() -> None:
    for files in list(_ALL):
        files._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
