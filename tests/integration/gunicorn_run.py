"""Real gunicorn with Frontdoor's worker class, for the tests that drive it over sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
WORKER = "orchestrator.frontend.gunicorn_worker.FrontdoorWorker"
LISTEN_TIMEOUT_S = 60


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    port: int, log: IO[Any], environ: dict[str, str], workers: int = 1
) -> subprocess.Popen[bytes]:
    """``gunicorn -k FrontdoorWorker orchestrator.wsgi:application`` on 127.0.0.1:``port``,
    stderr to ``log``, with ``environ`` as the only ``FRONTDOOR_*`` variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    env.update(environ)
    return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gunicorn", "-k", WORKER, "-w", str(workers),
         "-b", f"127.0.0.1:{port}", "--no-control-socket", "orchestrator.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Return once ``port`` accepts; ``AssertionError`` if gunicorn exits or takes 60 s."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            # Polling another process's port: it offers no event to wait on.
            time.sleep(0.1)
        else:
            return
    raise AssertionError(f"gunicorn did not listen within {LISTEN_TIMEOUT_S} s")
