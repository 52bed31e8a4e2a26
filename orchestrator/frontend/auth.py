"""Signed bearer tokens: HMAC-SHA256 in the JWT compact form, checked on every member request.

A token is ``base64url(header).base64url(claims).base64url(signature)`` with the header
``{"alg":"HS256","typ":"JWT"}`` and the claims ``sub`` (member id), ``iat``, ``exp`` and
``scope`` ("member" or "admin"), so standard JWT tooling can read and mint them.

``TokenSigner.verify`` authenticates the bytes before it decodes anything: the signature
is recomputed over the first two segments and compared in constant time, and only a token
that passes is decoded. Every rejection is one ``InvalidTokenError`` whose reason is for
logs only; devices get a bare 401 (``problems.unauthorized``). Tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "MAX_TOKEN_CHARS",
    "MEMBER_ID_PATTERN",
    "VERIFIED_CACHE_SIZE",
    "Claims",
    "InvalidTokenError",
    "NotAdminError",
    "Scope",
    "TokenSigner",
    "admin_principal",
    "bearer_token",
    "secret_equals",
]

Scope = Literal["member", "admin"]

#: Longer tokens are rejected before any hashing: a cap on the work one request can cause.
MAX_TOKEN_CHARS: Final = 4096
#: Genuine tokens remembered by ``TokenSigner.verify`` (about 300 bytes each).
VERIFIED_CACHE_SIZE: Final = 4096
#: Member ids go into backend paths and logs; anything else is refused at the door.
MEMBER_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
_MIN_SECRET_BYTES: Final = 32
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]*")
_BEARER: Final = re.compile(r"\s*bearer +(\S+)\s*", re.IGNORECASE)


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(segment: str) -> bytes:
    # urlsafe_b64decode silently skips characters outside the alphabet: check first.
    if len(segment) % 4 == 1 or not _BASE64URL.fullmatch(segment):
        raise InvalidTokenError("segment is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise InvalidTokenError("segment is not base64url") from exc


def _reject_constant(name: str) -> object:
    raise InvalidTokenError(f"non-finite number {name} in JSON")


# Built once: json.loads with any keyword builds a new decoder per call (~2 µs each).
_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _decode_json_object(segment: str) -> dict[str, object]:
    try:
        value = _JSON_DECODER.decode(_b64decode(segment).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidTokenError("segment is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidTokenError("segment is not a JSON object")
    return value


def _numeric_date(value: object, claim: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError(f"claim {claim} is not a number")
    if not math.isfinite(value):
        raise InvalidTokenError(f"claim {claim} is not finite")
    return math.floor(value)


class InvalidTokenError(Exception):
    """The token must not be accepted. The message is for logs; devices only see a 401."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: who, since when, until when, and with which scope."""

    sub: str
    iat: int
    exp: int
    scope: Scope = "member"

    @property
    def member_id(self) -> str:
        """The member the token was issued to (the ``sub`` claim)."""
        return self.sub

    @property
    def is_admin(self) -> bool:
        """Whether the token grants admin routes."""
        return self.scope == "admin"


class TokenSigner:
    """Issues and verifies HS256 tokens with one secret, one lifetime and an injected clock.

    ``leeway_s`` tolerates clock skew between the instance that issued a token and the
    one verifying it, for ``iat`` and ``nbf`` only: expiry is never extended.
    """

    __slots__ = ("_clock", "_header", "_leeway_s", "_secret", "_ttl_s", "_verified")

    def __init__(
        self,
        secret: bytes,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
        *,
        leeway_s: int = 30,
    ) -> None:
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {_MIN_SECRET_BYTES} bytes")
        if ttl_s < 1 or leeway_s < 0:
            raise ValueError("ttl_s must be >= 1 and leeway_s >= 0")
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock
        self._leeway_s = leeway_s
        self._header = _b64encode(b'{"alg":"HS256","typ":"JWT"}').decode("ascii")
        #: Tokens that passed ``verify``, with their claims. A device sends the same token
        #: with every request; verifying it again (HMAC, two base64 and a JSON decode,
        #: ~15 µs) proves nothing new. Only expiry can change, and it is checked on every hit.
        self._verified: dict[str, Claims] = {}

    def _sign(self, signing_input: bytes) -> bytes:
        # hmac.digest is the one-shot C path: cheaper than building an hmac object per call.
        return _b64encode(hmac.digest(self._secret, signing_input, hashlib.sha256))

    def issue(self, member_id: str, scope: Scope = "member") -> str:
        """A token for ``member_id``, valid from now for the signer's lifetime."""
        if not MEMBER_ID_PATTERN.fullmatch(member_id):
            raise ValueError("member ids are 1-64 characters of [A-Za-z0-9_-]")
        if scope not in ("member", "admin"):
            raise ValueError(f"unknown scope {scope!r}")
        issued_at = math.floor(self._clock())
        claims = {
            "sub": member_id,
            "iat": issued_at,
            "exp": issued_at + self._ttl_s,
            "scope": scope,
        }
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode("ascii"))
        signing_input = self._header.encode("ascii") + b"." + payload
        return (signing_input + b"." + self._sign(signing_input)).decode("ascii")

    def verify(self, token: str) -> Claims:
        """The claims of a genuine, current token; ``InvalidTokenError`` for anything else."""
        known = self._verified.get(token)
        if known is not None:
            if self._clock() >= known.exp:
                del self._verified[token]
                raise InvalidTokenError("token expired")
            return known
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            # Oldest first (insertion order): a flood of distinct genuine tokens only
            # cycles the cache, and each of them still had to pass the full check.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> Claims:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidTokenError("token too long")
        if not token.isascii():
            raise InvalidTokenError("token is not ASCII")
        signing_input, dot, signature = token.rpartition(".")
        if not dot:
            raise InvalidTokenError("token is not three segments")
        # Compare the encoded forms: no decoding before authentication, and a signature
        # with altered padding bits (same bytes, different text) is refused too.
        expected = self._sign(signing_input.encode("ascii"))
        if not hmac.compare_digest(expected, signature.encode("ascii")):
            raise InvalidTokenError("bad signature")

        header, dot, payload = signing_input.partition(".")
        if not dot or "." in payload:
            raise InvalidTokenError("token is not three segments")
        if header != self._header:
            # Signed by someone holding the secret, but by other JWT tooling.
            _check_header(_decode_json_object(header))
        return self._claims(_decode_json_object(payload))

    def _claims(self, claims: dict[str, object]) -> Claims:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not MEMBER_ID_PATTERN.fullmatch(sub):
            raise InvalidTokenError("claim sub is not a valid member id")
        issued_at = _numeric_date(claims.get("iat"), "iat")
        expires_at = _numeric_date(claims.get("exp"), "exp")
        scope_claim = claims.get("scope", "member")
        scope: Scope
        if scope_claim == "member":
            scope = "member"
        elif scope_claim == "admin":
            scope = "admin"
        else:
            raise InvalidTokenError("claim scope is unknown")

        now = self._clock()
        if now >= expires_at:
            raise InvalidTokenError("token expired")
        if issued_at > now + self._leeway_s:
            raise InvalidTokenError("token issued in the future")
        if "nbf" in claims and _numeric_date(claims["nbf"], "nbf") > now + self._leeway_s:
            raise InvalidTokenError("token not yet valid")
        return Claims(sub=sub, iat=issued_at, exp=expires_at, scope=scope)


def _check_header(header: dict[str, object]) -> None:
    # Only HS256: "none" and asymmetric algorithms (key-confusion attacks) are refused.
    if header.get("alg") != "HS256":
        raise InvalidTokenError("unsupported alg")
    if header.get("typ", "JWT") != "JWT":
        raise InvalidTokenError("unsupported typ")
    if "crit" in header:
        # RFC 7515 section 4.1.11: extensions we do not understand must be refused.
        raise InvalidTokenError("unsupported crit header")


def bearer_token(header_value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None if there is none.

    The scheme is case-insensitive (RFC 9110 section 11.1); any other scheme, an empty or
    space-separated credential gives None. The token itself is checked by ``verify``.
    """
    if header_value is None:
        return None
    match = _BEARER.fullmatch(header_value)
    return match.group(1) if match else None


def secret_equals(presented: str, expected: str) -> bool:
    """Compare a presented static secret (the admin token) in constant time.

    ``hmac.compare_digest`` raises TypeError on non-ASCII ``str``: compare UTF-8 bytes.
    """
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


class NotAdminError(Exception):
    """The credential does not grant admin access; ``why`` is for the audit log, and
    ``member`` says whether it is a genuine member token (403 rather than 401)."""

    def __init__(self, why: str, *, member: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.member = member


def admin_principal(token: str, admin_token: str, signer: TokenSigner | None) -> str:
    """Who an admin credential names: ``"admin_token"`` for the configured admin token,
    ``"token:<sub>"`` for an admin-scoped signed token (``frontdoor token --admin``).

    The one check behind ``/_admin/*`` and ``X-Frontdoor-Trace``; raises
    ``NotAdminError`` otherwise. A blank ``admin_token`` disables that path rather than
    matching anything; the comparison is constant time.
    """
    if admin_token and secret_equals(token, admin_token):
        return "admin_token"
    if signer is not None:
        try:
            claims = signer.verify(token)
        except InvalidTokenError:
            pass
        else:
            if claims.is_admin:
                return f"token:{claims.sub}"
            raise NotAdminError("member token", member=True)
    raise NotAdminError("invalid token")
