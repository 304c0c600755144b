"""A throwaway PostgreSQL server for the store's tests: a cluster in a temporary folder, on a free port on
loopback, run as the ``postgres`` system user when the tests run as root (PostgreSQL refuses root).
`./dev.sh test` installs Debian's postgresql package; without it the tests that need a server skip,
except under CI, where they fail (a database the product documents must be tested there)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgresql_server() -> Iterator[str]:
    """Start a server; yield an SQLAlchemy URL of an empty database on it (stopped and deleted after)."""
    binaries = _binaries()
    if binaries is None:
        message = "PostgreSQL is not installed (./dev.sh test installs Debian's postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="spinesim-pg-"))
    data, port = folder / "data", _free_port()
    if as_user:
        shutil.chown(folder, "postgres")
    run = lambda *command: subprocess.run(as_user + list(command), check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "spinesim", "--no-sync")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(folder / "log"),
            "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        try:
            run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "spinesim", "spinesim")
            yield f"postgresql+pg8000://spinesim@127.0.0.1:{port}/spinesim"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
