"""The authentication stage: who a call is for, as its endpoint's auth class requires."""

from __future__ import annotations

import logging

import pytest
from stage_kit import endpoint, scope

from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.authentication import Authenticator
from orchestrator.frontend.problems import Problem
from orchestrator.plans import Auth

SIGNER = TokenSigner(b"k" * 32, 3600)
MEMBER, ADMIN, PUBLIC = (
    endpoint(auth=Auth.MEMBER),
    endpoint(auth=Auth.ADMIN),
    endpoint(auth=Auth.PUBLIC),
)


class CountingSigner:
    """The real signer, counting verifications."""

    def __init__(self) -> None:
        self.verified = 0

    def verify(self, token: str) -> object:
        self.verified += 1
        return SIGNER.verify(token)


def _refusal(calls, endpoint_) -> tuple[int, str]:
    with pytest.raises(Problem) as caught:
        Authenticator(SIGNER).member(calls, endpoint_)
    return caught.value.status, caught.value.code


def test_public_endpoints_need_nobody():
    assert Authenticator(SIGNER).member(scope(authorization="Bearer junk"), PUBLIC) is None


def test_a_member_token_is_verified_once_per_scope():
    signer = CountingSigner()
    shared = scope(authorization=f"Bearer {SIGNER.issue('m1')}")
    authenticator = Authenticator(signer)
    assert [authenticator.member(shared, MEMBER) for _ in range(3)] == ["m1"] * 3
    assert signer.verified == 1


def test_no_token_or_a_bad_one_is_401_and_the_reason_logged(caplog):
    caplog.set_level(logging.INFO)
    assert _refusal(scope(), MEMBER) == (401, "unauthorized")
    assert _refusal(scope(authorization="Bearer not.a.token"), MEMBER) == (401, "unauthorized")
    (info,) = [record for record in caplog.records if record.getMessage().startswith("rejected")]
    assert info.name == "frontdoor.app"


def test_admin_endpoints_need_the_admin_scope():
    assert _refusal(scope(authorization=f"Bearer {SIGNER.issue('m1')}"), ADMIN) == (
        403,
        "forbidden",
    )
    admin = scope(authorization=f"Bearer {SIGNER.issue('ops', scope='admin')}")
    assert Authenticator(SIGNER).member(admin, ADMIN) == "ops"


def test_an_edges_enrichment_stands_for_a_member_token_not_an_admin_one():
    enriched = scope(enriched_member="m7")
    assert Authenticator(SIGNER).member(enriched, MEMBER) == "m7"
    assert _refusal(enriched, ADMIN) == (401, "unauthorized")
