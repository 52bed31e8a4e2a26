"""The channel between the worker processes of one gunicorn instance.

Why this mechanism. Each worker keeps its breakers, windows and admission in its own
memory, and gunicorn hands each admin request to whichever worker accepts it. The instance
view is built when asked, from every worker's own numbers: the worker that got the request
asks the others over a Unix socket each (``<dir>/<pid>.sock``) and merges the answers
(``orchestrator/ops/instance.py``). Nothing is copied on a timer, so nothing is stale: a
report is as fresh as the request, a restarted worker appears with its new pid as soon as
it listens, and a dead one disappears (its socket refuses; the file is removed). statsd
aggregation was not enough: it cannot carry a breaker force to every worker, and its
numbers lag a flush interval. A shared-memory segment would need locking across processes
for every call recorded, on the hot path; this costs nothing until an operator asks.

The directory is private to the instance and its user: ``<tmp>/frontdoor-<uid>/
gunicorn-<master pid>``, created 0700 and refused when it is not this user's own (or is a
symlink), sockets 0600. Whoever can connect can read the numbers and force a breaker, so
only the same user can; the admin credential is checked by the worker an operator talks to.

The protocol: one JSON line in (``{"op": "report"}`` or ``{"op": "force", "backend": ...,
"force": ...}``), one JSON line out, then the connection closes. Requests and replies are
bounded in size and time; a peer that does not answer within ``timeout_s`` is reported
missing, never waited for longer.

Forces outlive workers. ``forces.json`` in the directory holds every override in force
(written atomically, under an ``flock``); a worker applies it when it joins. The order
makes that race-free: a joining worker listens first and reads the file second, and a force
is written to the file first and sent to the listening workers second, so a worker that
joins during a force either reads it or receives it (or both: applying twice is harmless).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import gevent
import gevent.pool
import gevent.server

from actors.outcomes import BreakerForce
from orchestrator.ops.instance import (
    BreakerPart,
    LocalWorker,
    WorkerReport,
    breaker_from_json,
    breaker_json,
)

__all__ = ["PeerChannel", "WorkerDirectory"]

log = logging.getLogger("frontdoor.workers")

#: The longest request line a worker accepts, and the longest reply it reads.
MAX_REQUEST_BYTES: Final = 4096
MAX_REPLY_BYTES: Final = 4 * 1024 * 1024
#: A socket that refuses connections and is older than this belongs to a dead worker (a
#: live one listens microseconds after binding).
_STALE_AFTER_S: Final = 2.0
_FORCES: Final = "forces.json"
_INSTANCE_PREFIX: Final = "gunicorn-"
#: ``sun_path`` holds 108 bytes on Linux, the last one a NUL.
_MAX_SOCKET_PATH: Final = 107
#: Requests from other workers answered at once (a few admin views at a time).
_MAX_ANSWERING: Final = 16


class WorkerDirectory:
    """The instance's directory: one socket per live worker, and the forces in effect."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_master(cls, master_pid: int, root: Path | None = None) -> WorkerDirectory:
        """The directory of the gunicorn instance whose master is ``master_pid``: named by
        its pid and start time, so a later master that reuses the pid starts afresh rather
        than inherit forces."""
        base = Path(tempfile.gettempdir()) if root is None else root
        name = f"{_INSTANCE_PREFIX}{master_pid}-{_started(master_pid)}"
        return cls(base / f"frontdoor-{os.getuid()}" / name)

    def prepare(self) -> None:
        """Create the directory (and its parent) 0700; refuse one that is not ours; remove
        the directories of instances whose master is gone."""
        for path in (self.path.parent, self.path):
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=0o700)
            info = path.lstat()
            if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid():
                raise PermissionError(f"{path} is not a directory of this user's own")
            if info.st_mode & 0o077:
                raise PermissionError(f"{path} is open to other users (mode {info.st_mode:o})")
        for sibling in self.path.parent.glob(f"{_INSTANCE_PREFIX}*"):
            pid, _, started = sibling.name.removeprefix(_INSTANCE_PREFIX).partition("-")
            if sibling != self.path and pid.isdigit() and _started(int(pid)) != started:
                shutil.rmtree(sibling, ignore_errors=True)

    def socket_path(self, pid: int) -> Path:
        """Where worker ``pid`` listens; ``OSError`` when that path is too long for a Unix
        socket (107 bytes on Linux): a long ``TMPDIR``."""
        path = self.path / f"{pid}.sock"
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            raise OSError(
                errno.ENAMETOOLONG,
                f"{path} is longer than a Unix socket path may be ({_MAX_SOCKET_PATH} bytes): "
                "set TMPDIR to a shorter directory",
            )
        return path

    def workers(self) -> list[int]:
        """Pids with a socket here (live or not yet found dead)."""
        pids = []
        for entry in self.path.glob("*.sock"):
            with contextlib.suppress(ValueError):
                pids.append(int(entry.stem))
        return sorted(pids)

    def forget_if_stale(self, pid: int) -> bool:
        """Remove ``pid``'s socket after it refused a connection, unless it may be a worker
        between binding and listening; True if removed."""
        path = self.socket_path(pid)
        try:
            age = time.time() - path.lstat().st_mtime
        except FileNotFoundError:
            return True
        if _alive(pid) and age < _STALE_AFTER_S:
            return False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return True

    def forces(self) -> dict[str, str]:
        """Every override in force: backend -> ``open`` or ``closed``."""
        with self._locked():
            return self._read_forces()

    def remember(self, backend: str, force: str) -> None:
        """Record ``force`` for ``backend`` (``clear`` removes it), atomically."""
        with self._locked():
            forces = self._read_forces()
            if force == BreakerForce.CLEAR:
                forces.pop(backend, None)
            else:
                forces[backend] = force
            staged = self.path / f".{_FORCES}.{os.getpid()}"
            staged.write_text(json.dumps(forces, sort_keys=True))
            staged.replace(self.path / _FORCES)

    def _read_forces(self) -> dict[str, str]:
        try:
            data = json.loads((self.path / _FORCES).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", _FORCES, exc)
            return {}
        valid = {BreakerForce.OPEN.value, BreakerForce.CLOSED.value}
        return {
            str(name): force
            for name, force in (data.items() if isinstance(data, dict) else ())
            if force in valid
        }

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


class PeerChannel:
    """This worker's end: answers the other workers, and asks them (``instance.Peers``)."""

    def __init__(
        self,
        directory: WorkerDirectory,
        local: LocalWorker,
        *,
        timeout_s: float = 1.0,
        pid: Callable[[], int] = os.getpid,
    ) -> None:
        self._directory = directory
        self._local = local
        self._timeout_s = timeout_s
        self._pid = pid
        self._server: gevent.server.StreamServer | None = None

    def start(self) -> None:
        """Listen, then apply the forces in effect (in that order: see the module doc)."""
        self._directory.prepare()
        path = self._directory.socket_path(self._pid())
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a previous process with this pid
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old_mask)
        listener.listen(64)
        self._server = gevent.server.StreamServer(
            listener, self._serve, spawn=gevent.pool.Pool(_MAX_ANSWERING)
        )
        self._server.start()
        for backend, force in self._directory.forces().items():
            if self._local.force(backend, force) is not None:
                log.info("joined with %s's breaker forced %s, as in the others", backend, force)

    def close(self) -> None:
        """Stop answering and remove this worker's socket."""
        if self._server is not None:
            self._server.stop(timeout=0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self._directory.socket_path(self._pid()).unlink()

    # -- instance.Peers -----------------------------------------------------------------

    def reports(self) -> list[tuple[int, WorkerReport | None]]:
        """Every other live worker's report; None for one that did not answer in time."""
        replies = self._ask_all({"op": "report"})
        return [(pid, _report(reply)) for pid, reply in replies]

    def force(self, backend: str, force: str) -> list[tuple[int, BreakerPart | None]]:
        """Apply a force in every other live worker."""
        replies = self._ask_all({"op": "force", "backend": backend, "force": force})
        return [(pid, _breaker(reply)) for pid, reply in replies]

    def remember(self, backend: str, force: str) -> None:
        """Keep the force for workers started later."""
        self._directory.remember(backend, force)

    def pids(self) -> list[int]:
        """Every worker with a socket in the directory (this one included)."""
        return self._directory.workers()

    # -- serving ------------------------------------------------------------------------

    def _serve(self, conn: socket.socket, _address: Any) -> None:
        conn.settimeout(self._timeout_s)
        try:
            line = _read_line(conn, MAX_REQUEST_BYTES)
            reply = self._answer(json.loads(line))
        except (OSError, ValueError) as exc:
            reply = {"error": str(exc)[:200]}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        conn.close()

    def _answer(self, request: Any) -> dict[str, Any]:
        op = request.get("op") if isinstance(request, dict) else None
        if op == "report":
            return {"report": self._local.report().to_json()}
        if op == "force":
            backend, force = str(request.get("backend")), str(request.get("force"))
            part = self._local.force(backend, force)
            if part is None:
                return {"error": f"no backend {backend[:64]!r}"}
            return {"breaker": breaker_json(part)}
        return {"error": "unknown op"}

    # -- asking -------------------------------------------------------------------------

    def _ask_all(self, request: dict[str, Any]) -> list[tuple[int, dict[str, Any] | None]]:
        me = self._pid()
        peers = [pid for pid in self._directory.workers() if pid != me]
        if not peers:
            return []
        payload = json.dumps(request).encode() + b"\n"
        pool = gevent.pool.Pool(len(peers))
        answers = pool.map(lambda pid: (pid, self._ask(pid, payload)), peers)
        return [(pid, reply) for pid, reply in answers if reply is not _GONE]

    def _ask(self, pid: int, payload: bytes) -> Any:
        """One peer's reply; None when it did not answer in time; ``_GONE`` when it is
        dead (its socket removed)."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self._timeout_s)
        try:
            with gevent.Timeout(self._timeout_s):
                conn.connect(str(self._directory.socket_path(pid)))
                conn.sendall(payload)
                reply = json.loads(_read_line(conn, MAX_REPLY_BYTES))
        except (FileNotFoundError, ConnectionRefusedError):
            return _GONE if self._directory.forget_if_stale(pid) else None
        except (OSError, ValueError, gevent.Timeout) as exc:
            log.warning("worker %d did not answer: %s", pid, exc or type(exc).__name__)
            return None
        finally:
            conn.close()
        if not isinstance(reply, dict) or "error" in reply:
            log.warning("worker %d answered an error: %s", pid, str(reply)[:200])
            return None
        return reply


#: Marks a peer found dead: left out of the answer, not reported missing.
_GONE: Final[Any] = object()


def _read_line(conn: socket.socket, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError(f"message over {limit} bytes")
        if chunk.endswith(b"\n"):
            break
    data = b"".join(chunks)
    if not data.endswith(b"\n"):
        raise ValueError("message cut short")
    return data


def _report(reply: dict[str, Any] | None) -> WorkerReport | None:
    if reply is None:
        return None
    try:
        return WorkerReport.from_json(reply["report"])
    except (KeyError, ValueError) as exc:
        log.warning("unreadable worker report: %s", exc)
        return None


def _breaker(reply: dict[str, Any] | None) -> BreakerPart | None:
    if reply is None:
        return None
    try:
        return breaker_from_json(reply["breaker"])
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("unreadable breaker: %s", exc)
        return None


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); ``gone`` if it
    does not exist, ``0`` where there is no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "gone" if Path("/proc/self/stat").exists() else "0"
    except OSError:
        return "0"
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:  # pragma: no cover - other errno: assume alive
        return exc.errno != errno.ESRCH
    return True
