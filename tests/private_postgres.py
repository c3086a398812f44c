"""A PostgreSQL server of a test module's own, to stop and restart at will.

The shared server is not ours to restart, so the tests of outages start an instance of their own
(``initdb`` into a temporary directory owned by the ``postgres`` user, a free port, its socket
in that directory) and stop only that one, by its data directory, at the end. Importable as
``private_postgres`` (tests/ is on ``sys.path``, see workers.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BIN = Path(os.environ.get("PYWORKFLOW_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PrivateServer:
    """A PostgreSQL instance of a test module's own, run as the ``postgres`` user (initdb refuses
    root). Only this instance is ever stopped or restarted, by its data directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pwtest-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        with socket.socket() as probe:  # a free port (the kernel picks; closed before use)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/pw"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> None:
        command = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # Output to a file, not a pipe: a server that pg_ctl starts would hold a pipe open.
        with (self.dir / "tools.log").open("a+") as out:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout
            )
            out.seek(0)
            assert done.returncode == 0, f"{tool} {args}:\n{out.read()}\n{self.server_log()}"

    def server_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def init(self) -> None:
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def restart(self, mode: str) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w", "restart")

    def stop(self, mode: str = "immediate") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A private instance, initialised and started (initdb costs seconds); removed at the end."""
    instance = PrivateServer()
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        if (instance.data / "postmaster.pid").exists():
            instance.stop()
        shutil.rmtree(instance.dir, ignore_errors=True)
