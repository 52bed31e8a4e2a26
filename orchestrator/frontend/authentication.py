"""The authentication stage: who a call is for, as its endpoint's ``Auth`` requires.

Public endpoints need nobody. Member endpoints need a valid member token, or a trusted
edge's enrichment (the edge verified the token). Admin endpoints need a token with the
admin scope. The scope's Authorization is verified at most once, whatever the number of
calls in it; a missing or bad token is a 401 ``unauthorized`` (the reason is logged), a
valid token without the needed scope a 403 ``forbidden``.
"""

from __future__ import annotations

import logging

from orchestrator.frontend import problems
from orchestrator.frontend.auth import Claims, InvalidTokenError, TokenSigner, bearer_token
from orchestrator.frontend.request import LOGGER, Scope
from orchestrator.plans import Auth, Endpoint

__all__ = ["Authenticator"]

log = logging.getLogger(LOGGER)


class Authenticator:
    """Verifies member and admin tokens with ``signer``."""

    __slots__ = ("_signer",)

    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer

    def member(self, scope: Scope, endpoint: Endpoint) -> str | None:
        """The member a call of ``scope`` to ``endpoint`` is for (None: public); raises a
        problem when the scope's credentials are not enough."""
        if endpoint.auth is Auth.PUBLIC:
            return None
        if scope.enriched_member is not None and endpoint.auth is Auth.MEMBER:
            return scope.enriched_member  # the edge verified the member's token
        if not scope.verified:
            scope.claims, scope.verified = self._verify(scope.authorization), True
        if scope.claims is None:
            raise problems.unauthorized()
        if endpoint.auth is Auth.ADMIN and scope.claims.scope != "admin":
            raise problems.forbidden()
        return scope.claims.sub

    def _verify(self, authorization: str | None) -> Claims | None:
        """The token's claims; None when there is no acceptable token (the reason is logged)."""
        token = bearer_token(authorization)
        if token is None:
            return None
        try:
            return self._signer.verify(token)
        except InvalidTokenError as exc:
            log.info("rejected token: %s", exc)
            return None
