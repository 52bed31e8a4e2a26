"""Where a load may go: a parsed ``http://host:port`` base URL and the loopback-only policy.

A load tool pointed at the wrong address is a denial-of-service tool, so every URL the
generator talks to (Frontdoor and the simulated services' admin API) passes through
``parse_target``: plain HTTP only, no path, no credentials, and loopback unless the operator
says ``allow_remote`` explicitly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DEFAULT_BACKENDS_URL", "DEFAULT_TARGET_URL", "Target", "TargetError", "parse_target"]

#: Frontdoor as ``bin/serve`` starts it.
DEFAULT_TARGET_URL = "http://127.0.0.1:8080"
#: The simulated microservices embedded in ``bin/serve``.
DEFAULT_BACKENDS_URL = "http://127.0.0.1:9090"

_LOOPBACK_NAMES = frozenset({"localhost"})


class TargetError(ValueError):
    """A URL the generator refuses to send to."""


@dataclass(frozen=True, slots=True)
class Target:
    """One HTTP origin: the host to connect to, its port and the ``Host`` header to send."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The origin as a URL, e.g. ``http://127.0.0.1:8080``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def host_header(self) -> str:
        """The value of the ``Host`` request header."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name could resolve anywhere


def parse_target(url: str, *, allow_remote: bool = False) -> Target:
    """Parse a base URL; ``TargetError`` says why one is refused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme != "http":
        raise TargetError(f"{url!r}: only http:// URLs are supported")
    if not parts.hostname:
        raise TargetError(f"{url!r} names no host")
    if parts.username or parts.password:
        raise TargetError(f"{url!r}: credentials in URLs are not supported")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TargetError(f"{url!r}: give the origin only (no path, query or fragment)")
    if not allow_remote and not is_loopback(parts.hostname):
        raise TargetError(
            f"{url!r} is not a loopback address; refusing to send load elsewhere "
            "(pass --allow-remote if you really mean it)"
        )
    return Target(parts.hostname, 80 if port is None else port)
