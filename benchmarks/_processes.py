"""What the benchmarks share: child processes on loopback ports, pinned to a core, and
their CPU time and memory read from /proc. Not a benchmark itself (the leading underscore).

Scripts run as ``.venv/bin/python benchmarks/NAME.py``, so this module imports as
``_processes``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
#: ``python -c`` programs: bin/loadtest's engine and the simulated microservices, patched
#: by gevent first as their bin/ scripts do.
LOADTEST_MAIN = (
    "from gevent import monkey; monkey.patch_all();"
    "from orchestrator.loadtest.cli import main; raise SystemExit(main())"
)
BACKENDS_MAIN = (
    "from gevent import monkey; monkey.patch_all();"
    "from backends.simulated.cli import main; raise SystemExit(main())"
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout_s: float = 20.0) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.1)  # polling a child process's port: nothing to wait on instead
        else:
            return
    raise RuntimeError(f"nothing listens on port {port}")


def spawn(
    args: list[str], core: int | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``args`` in the checkout, quiet, pinned to ``core`` when given."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if core is not None:
        os.sched_setaffinity(process.pid, {core % (os.cpu_count() or 1)})
    return process


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every process, then wait for each (killing one that hangs)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """The process's resident memory, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")
