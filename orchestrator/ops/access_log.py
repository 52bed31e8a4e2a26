"""Structured logs: one JSON access line per request, JSON event lines, a JSON formatter.

Loggers (each line names its own in ``logger``):

- ``frontdoor.access``: one ``access`` line per request (``AccessLog.write``), and a
  ``slow_request`` line with the request's trace when it took longer than
  ``logging.slow_request_ms`` (0: every request).
- ``frontdoor.events``: ``breaker_state``, ``shedding_started``/``shedding_stopped``,
  ``backend_restarted`` (``EventLog``).
- ``frontdoor.audit``: ``admin_action`` lines (written by ``orchestrator.ops.admin``).

Every other logger of Frontdoor is in the same family (``frontdoor.app``,
``frontdoor.server``, ``frontdoor.actors.backend``...), so one filter on ``frontdoor``
catches all; errors no greenlet caught are ``frontdoor.greenlets``.

What is never logged: tokens and the ``Authorization`` header (``JsonFormatter`` also
scrubs the values of secrets from every line, as a second line of defence: bearer
credentials, JWT-shaped strings and the configured secrets, never ordinary words); the
query string (it may carry search terms: only its length is logged); raw device headers
(``X-Device-Type`` is reduced to ``[A-Za-z0-9._-]`` and truncated). Values are
JSON-encoded, so a newline or quote in a path cannot forge a line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

import gevent
import orjson

from actors.outcomes import BreakerState
from actors.plan import StepRecord

__all__ = [
    "ACCESS_LOGGER",
    "AUDIT_LOGGER",
    "EVENTS_LOGGER",
    "FIELDS_ATTR",
    "AccessEntry",
    "AccessLog",
    "EventLog",
    "JsonFormatter",
    "SheddingMonitor",
    "access_entry",
    "backend_calls",
    "install_json_logging",
    "log_greenlet_errors",
    "sanitize",
]

ACCESS_LOGGER: Final = "frontdoor.access"
EVENTS_LOGGER: Final = "frontdoor.events"
AUDIT_LOGGER: Final = "frontdoor.audit"
#: ``logger.info(msg, extra={FIELDS_ATTR: {...}})`` puts the fields at the line's top level.
FIELDS_ATTR: Final = "fields"

_MAX_PATH_CHARS: Final = 256
_MAX_HEADER_CHARS: Final = 64
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")
_UNSAFE_ADDRESS: Final = re.compile(r"[^A-Za-z0-9.:\[\]_%-]")
_BASE_KEYS: Final = ("time", "level", "logger", "message")
# Second line of defence: credentials that slipped into a message or a field.
# A bearer *credential*: at least 16 characters (the shortest secret the configuration
# accepts; member tokens are far longer), so words after "bearer" ("no bearer token") stay.
_BEARER: Final = re.compile(r"(?i)\b(bearer\s+)[^\s\"\\]{16,}")
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_REDACTED: Final = "[redacted]"
# Replacing a shorter "secret" everywhere would shred ordinary text; config demands >= 16.
_MIN_REDACT_CHARS: Final = 4


def sanitize(value: str | None, max_chars: int = _MAX_HEADER_CHARS) -> str | None:
    """A device-supplied word made safe for logs: truncated, outside ``[A-Za-z0-9._-]`` → _."""
    if value is None:
        return None
    return _UNSAFE.sub("_", value[:max_chars])


# ---------------------------------------------------------------------------------------
# The formatter.


class JsonFormatter(logging.Formatter):
    """Formats every record as one JSON object on one line.

    Keys: ``time`` (ISO-8601 UTC, milliseconds, ``Z``), ``level``, ``logger``, ``message``,
    then the record's ``fields`` (``extra={"fields": {...}}``) at the top level (a field
    named like a base key is written with a ``field_`` prefix), then ``exc_type`` and
    ``exc`` (the traceback) when the record carries an exception.
    ``redact``: secrets (the admin token, the token key) replaced wherever they appear.
    """

    def __init__(self, *, redact: Iterable[str] = ()) -> None:
        super().__init__()
        # Compare against the JSON-escaped form, which is what appears in the line.
        self._secrets = tuple(
            json.dumps(secret)[1:-1] for secret in redact if len(secret) >= _MIN_REDACT_CHARS
        )

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line (without the newline; the handler adds it)."""
        line: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                line[f"field_{key}" if key in _BASE_KEYS else str(key)] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        text = orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        if not text.isascii():
            # Lines stay ASCII (a log pipeline may not be UTF-8 clean): escape as json does.
            text = json.dumps(line, ensure_ascii=True, separators=(",", ":"), default=str)
        return self._redact(text)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        # The substring tests cost 0.3 us; each regex scan of a line costs about 7 us.
        if "bearer" in text.lower():
            text = _BEARER.sub(r"\g<1>" + _REDACTED, text)
        if "eyJ" in text:
            text = _JWT.sub(_REDACTED, text)
        return text


def _iso_utc(created: float) -> str:
    # Lines come in bursts within one second: its "YYYY-MM-DDTHH:MM:SS" is made once.
    # Rounded to the microsecond first, exactly as datetime.fromtimestamp does, then cut.
    fraction, whole = math.modf(created)
    second, micros = int(whole), round(fraction * _MICROS)
    if micros >= _MICROS:
        second, micros = second + 1, micros - _MICROS
    elif micros < 0:
        second, micros = second - 1, micros + _MICROS
    if _SECOND[0] != second:
        stamp = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _SECOND[:] = [second, stamp]
    return f"{_SECOND[1]}.{micros // 1000:03d}Z"


_MICROS: Final = 1_000_000
#: The second ``_iso_utc`` last formatted, and its text.
_SECOND: list[Any] = [None, ""]


def install_json_logging(
    level: str, *, stream: IO[str] | None = None, redact: Iterable[str] = ()
) -> logging.Handler:
    """Make the root logger write JSON lines to ``stream`` (stderr); for entry points only.

    Replaces the root logger's handlers (so ``logging.basicConfig`` is not needed) and
    returns the new handler, so a test can remove it again.
    """
    # Two of the logging HOWTO's "Optimization" switches: every record would otherwise walk
    # up the stack for its caller's file and line, and look up its multiprocessing name;
    # a JSON line carries neither. Thread and process ids stay: they are cheap, and other
    # formatters in the process (gunicorn's "[%(process)d]") format them as numbers.
    logging._srcfile = None  # noqa: SLF001 - the documented way to skip caller lookup
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter(redact=redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def log_greenlet_errors() -> None:
    """Send errors no greenlet caught through logging (one JSON line with its traceback)
    instead of the plain text gevent's hub prints to stderr; for entry points only.

    ``Hub.print_exception`` is the hook gevent documents for this; the current thread's hub
    is the one serving.
    """
    gevent.get_hub().print_exception = _log_hub_error


def _log_hub_error(
    context: object, kind: type[BaseException], value: BaseException, tb: Any
) -> None:
    logging.getLogger("frontdoor.greenlets").error(
        "uncaught error in %s", type(context).__name__, exc_info=(kind, value, tb)
    )


# ---------------------------------------------------------------------------------------
# Access lines.


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One request as the access log shows it. Build it with ``access_entry``."""

    request_id: str
    method: str
    path: str
    query_chars: int
    endpoint: str | None
    team: str | None
    status: int
    latency_ms: float
    degraded: tuple[str, ...]
    backend_calls: int
    client: str | None
    device_type: str | None
    #: The id its backend calls carried, when not ``request_id`` (a device's id, not
    #: trusted: ``server.trust_request_id``); None when they carried ``request_id``.
    backend_request_id: str | None = None


def access_entry(
    environ: Mapping[str, Any],
    *,
    request_id: str,
    status: int,
    latency_ms: float,
    backend_request_id: str = "",
    endpoint: str | None = None,
    team: str | None = None,
    degraded: Sequence[str] = (),
    backend_calls: int = 0,
    device_type: str | None = None,
) -> AccessEntry:
    """The access entry of one request, read from its WSGI ``environ`` safely.

    ``endpoint`` is ``Endpoint.metric_name`` (None when unrouted). The path is
    ``PATH_INFO`` only; of the query string only its length is kept. ``client`` is
    ``REMOTE_ADDR`` (the balancer's address behind one: forwarding headers are not trusted).
    ``device_type`` is the endpoint's own parameter when it has one (playback's), else the
    ``X-Device-Type`` header; sanitized either way.
    """
    path = str(environ.get("PATH_INFO", "") or "/")
    device = device_type if device_type is not None else environ.get("HTTP_X_DEVICE_TYPE")
    client = environ.get("REMOTE_ADDR")
    return AccessEntry(
        request_id=request_id,
        method=sanitize(str(environ.get("REQUEST_METHOD", "")), 16) or "",
        path=path[:_MAX_PATH_CHARS],
        query_chars=len(str(environ.get("QUERY_STRING", ""))),
        endpoint=endpoint,
        team=team,
        status=status,
        latency_ms=round(latency_ms, 3),
        degraded=tuple(degraded),
        backend_calls=backend_calls,
        client=None if client is None else _UNSAFE_ADDRESS.sub("_", str(client)[:64]),
        device_type=sanitize(None if device is None else str(device)),
        backend_request_id=backend_request_id
        if backend_request_id and backend_request_id != request_id
        else None,
    )


def backend_calls(records: Iterable[StepRecord]) -> int:
    """Backend attempts a request made (retries included): the ``backend_calls`` field.

    Rejections, short-circuits and skipped steps made none. Summed over requests, it gives
    the backend calls per device request that the retry budget bounds.
    """
    return sum(record.attempts for record in records)


class AccessLog:
    """Writes access lines, and the trace of slow requests.

    ``slow_request_ms``: a request taking longer gets a ``slow_request`` line with its trace
    (0 means every request). The trace is built only then: ``trace`` is a callable.
    """

    def __init__(self, slow_request_ms: int, logger: logging.Logger | None = None) -> None:
        self.slow_request_ms = slow_request_ms
        self._log = logging.getLogger(ACCESS_LOGGER) if logger is None else logger

    def write(
        self,
        entry: AccessEntry,
        trace: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        """Log one request; never raises (a broken trace builder is noted in the line)."""
        slow = self._is_slow(entry.latency_ms)
        if self._log.isEnabledFor(logging.INFO):
            # Spelled out: dataclasses.asdict deep-copies and was half the line's cost.
            fields = {
                "event": "access",
                "request_id": entry.request_id,
                "method": entry.method,
                "path": entry.path,
                "query_chars": entry.query_chars,
                "endpoint": entry.endpoint,
                "team": entry.team,
                "status": entry.status,
                "latency_ms": entry.latency_ms,
                "degraded": list(entry.degraded),
                "backend_calls": entry.backend_calls,
                "client": entry.client,
                "device_type": entry.device_type,
                "slow": slow,
                "backend_request_id": entry.backend_request_id,
            }
            self._log.info("access", extra={FIELDS_ATTR: fields})
        if not slow or not self._log.isEnabledFor(logging.WARNING):
            return
        slow_fields: dict[str, Any] = {
            "event": "slow_request",
            "request_id": entry.request_id,
            "endpoint": entry.endpoint,
            "status": entry.status,
            "latency_ms": entry.latency_ms,
            "threshold_ms": self.slow_request_ms,
        }
        try:
            slow_fields["trace"] = [] if trace is None else list(trace())
        except Exception as exc:  # noqa: BLE001 - a trace bug must not lose the access line
            slow_fields["trace_error"] = type(exc).__name__
        self._log.warning("slow request", extra={FIELDS_ATTR: slow_fields})

    def _is_slow(self, latency_ms: float) -> bool:
        return self.slow_request_ms == 0 or latency_ms > self.slow_request_ms


# ---------------------------------------------------------------------------------------
# Events.


class EventLog:
    """Operational events as JSON lines on ``frontdoor.events``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logging.getLogger(EVENTS_LOGGER) if logger is None else logger

    def emit(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        """Log ``event`` with ``fields`` at the line's top level."""
        self._log.log(level, event, extra={FIELDS_ATTR: {"event": event, **fields}})

    def breaker_changed(self, backend: str, old: str, new: str) -> None:
        """A backend's breaker changed state (``ActorSystem(on_breaker_change=...)``)."""
        level = logging.WARNING if new != BreakerState.CLOSED else logging.INFO
        self.emit("breaker_state", level, backend=backend, old=old, new=new)

    def backend_restarted(self, backend: str, restarts: int) -> None:
        """A crashed backend actor was replaced."""
        self.emit("backend_restarted", logging.WARNING, backend=backend, restarts=restarts)

    def shedding_started(self, shed: int, inflight: int) -> None:
        """Requests started being shed with 503."""
        self.emit("shedding_started", logging.WARNING, shed=shed, inflight=inflight)

    def shedding_stopped(self, shed: int, duration_s: float) -> None:
        """No request was shed for one report interval."""
        self.emit("shedding_stopped", shed=shed, duration_s=round(duration_s, 3))


class SheddingMonitor:
    """Turns the shed counter, read every gauge interval, into onset and recovery events.

    Onset: the counter grew since the last observation. Recovery: it did not grow for one
    whole interval. Driven by ``GaugeReporter`` (no per-request cost, no timer of its own)
    as an observer: ``lambda s: monitor.observe(s.shed_total, s.frontend_inflight)``.
    """

    def __init__(self, events: EventLog, clock: Callable[[], float] = time.monotonic) -> None:
        self._events = events
        self._clock = clock
        self._last_total: int | None = None
        self._since: float | None = None
        self._shed_in_episode = 0

    @property
    def shedding(self) -> bool:
        """Whether an episode of shedding is under way."""
        return self._since is not None

    def observe(self, shed_total: int, inflight: int = 0) -> None:
        """One reading of ``Admission.shed`` (a total since start)."""
        last, self._last_total = self._last_total, shed_total
        if last is None:
            last = 0
        new = shed_total - last if shed_total >= last else shed_total
        if new > 0:
            if self._since is None:
                self._since = self._clock()
                self._shed_in_episode = 0
                self._events.shedding_started(new, inflight)
            self._shed_in_episode += new
        elif self._since is not None:
            self._events.shedding_stopped(self._shed_in_episode, self._clock() - self._since)
            self._since = None
