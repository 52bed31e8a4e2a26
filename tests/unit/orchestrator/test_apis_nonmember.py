"""The non-member API declarations: plans and sign-up, their requests, composition and guards."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

import pytest
from family_harness import Family

from orchestrator.apis import FAMILIES, TEAMS
from orchestrator.apis.nonmember import endpoints as nonmember  # the module
from orchestrator.apis.shaping import ShapeError
from orchestrator.plans import Auth, Refused, Source

SIGNUP = {"email": "ann@example.com", "country": "US", "plan_id": "standard", "card_last4": "4242"}

US_PLANS = {
    "country": "US",
    "currency": "USD",
    "plans": [
        {
            "id": "basic",
            "name": "Basic",
            "price": 999,
            "currency": "USD",
            "max_streams": 1,
            "video_quality": "720p",
        },
        {
            "id": "standard",
            "name": "Standard",
            "price": 1799,
            "currency": "USD",
            "max_streams": 2,
            "video_quality": "1080p",
            "internal_margin": 0.4,  # not part of the contract: must not reach devices
        },
    ],
}
ACCOUNT = {
    "member_id": "m9001",
    "email": "ann@example.com",
    "country": "US",
    "plan_id": "standard",
    "created_at": "2026-11-26T07:00:00Z",
}
TRIALING = {
    "subscription_id": "s77",
    "status": "trialing",
    "trial_ends_at": "2026-12-26T07:00:00Z",
    "next_charge": {"amount": 1799, "currency": "USD", "date": "2026-12-26"},
}

family = Family(nonmember.endpoints, member_id=None)


def _signup_results(**overrides: Any) -> dict[str, Any]:
    results = {
        "eligibility": {"eligible": True, "trial_days": 30},
        "plan": US_PLANS,
        "account": ACCOUNT,
        "subscription": TRIALING,
    }
    results.update(overrides)
    return results


def test_the_family_is_registered_under_its_name_and_team():
    """FAMILIES and TEAMS are read-only and map nonmember to its declarations and to growth."""
    assert isinstance(FAMILIES, MappingProxyType)
    assert isinstance(TEAMS, MappingProxyType)
    assert FAMILIES["nonmember"] is nonmember.endpoints
    assert TEAMS["nonmember"] == "growth"


def test_endpoints_are_public_documented_and_named():
    """Both endpoints are public, owned by growth, with a summary and described params."""
    endpoints = nonmember.endpoints()
    assert [(e.name, e.method, e.path) for e in endpoints] == [
        ("plans", "GET", "/v1/nonmember/plans"),
        ("signup", "POST", "/v1/nonmember/signup"),
    ]
    for endpoint in endpoints:
        assert endpoint.api == "nonmember"
        assert endpoint.team == TEAMS["nonmember"]
        assert endpoint.auth is Auth.PUBLIC
        assert endpoint.summary
        assert all(param.description for param in endpoint.params)
    assert [e.deadline_ms for e in endpoints] == [800, 2000]


def test_signup_answers_201_grants_a_token_and_takes_its_params_from_the_body():
    """Sign-up creates a resource, asks the app for a member token, and reads a JSON body."""
    signup = family.endpoint("signup")
    assert signup.success_status == 201
    assert signup.grants_member_token
    assert {p.name for p in signup.params} == set(SIGNUP)
    assert all(p.source is Source.BODY and p.required for p in signup.params)


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("ann@example.com", True),
        ("o'brien+films@mail.example.co.uk", True),
        ("ann@localhost", False),
        ("ann example@example.com", False),
        ("@example.com", False),
        ("ann@@example.com", False),
    ],
)
def test_the_email_pattern_accepts_real_addresses_and_rejects_nonsense(email: str, ok: bool):
    """The e-mail pattern wants a local part, one @ and a dotted domain, without spaces."""
    pattern = {p.name: p for p in family.endpoint("signup").params}["email"].pattern
    assert pattern is not None
    assert bool(re.fullmatch(pattern, email)) is ok


def test_plans_asks_the_plans_service_for_the_country():
    """The plans step is a GET of the plans for the requested country."""
    request = family.steps("plans")["plans"].request(family.ctx({"country": "US"}))
    assert request is not None
    assert (request.method, request.target()) == ("GET", "/plans?country=US")


def test_plans_copies_only_contract_fields():
    """The device gets the country, currency and each plan's known fields, nothing else."""
    body = family.endpoint("plans").plan.compose(family.ctx({"country": "US"}, plans=US_PLANS))
    assert body["country"] == "US"
    assert body["currency"] == "USD"
    assert body["plans"][1] == {
        "id": "standard",
        "name": "Standard",
        "price": 1799,
        "currency": "USD",
        "max_streams": 2,
        "video_quality": "1080p",
    }


@pytest.mark.parametrize(
    "reply",
    [
        [],
        {**US_PLANS, "country": "GB"},
        {**US_PLANS, "plans": [{**US_PLANS["plans"][0], "price": "9.99"}]},
        {**US_PLANS, "plans": [{**US_PLANS["plans"][0], "max_streams": True}]},
        {**US_PLANS, "plans": "basic,standard"},
    ],
)
def test_plans_rejects_a_wrongly_typed_reply(reply: Any):
    """A reply of the wrong shape, or for another country, raises instead of leaking."""
    with pytest.raises(ShapeError):
        family.endpoint("plans").plan.compose(family.ctx({"country": "US"}, plans=reply))


def test_signup_runs_eligibility_and_plan_in_parallel_then_account_then_subscription():
    """Only the trial check is optional; account waits for both checks, billing for the account."""
    steps = family.steps("signup")
    assert {name: (s.backend, s.after) for name, s in steps.items()} == {
        "eligibility": ("trial", ()),
        "plan": ("plans", ()),
        "account": ("accounts", ("eligibility", "plan")),
        "subscription": ("billing", ("eligibility", "account")),
    }
    assert [name for name, s in steps.items() if not s.required] == ["eligibility"]
    assert steps["eligibility"].fallback is not None
    assert steps["eligibility"].fallback.value == {"eligible": False, "trial_days": 0}


def test_signup_builders_send_the_contract_requests():
    """Eligibility is a GET by e-mail; account and subscription are POSTs with explicit bodies."""
    ctx = family.ctx(SIGNUP, **_signup_results())
    eligibility = family.steps("signup")["eligibility"].request(ctx)
    account = family.steps("signup")["account"].request(ctx)
    subscription = family.steps("signup")["subscription"].request(ctx)
    assert eligibility is not None
    assert (eligibility.method, eligibility.target()) == (
        "GET",
        "/eligibility?email=ann%40example.com",
    )
    assert account is not None
    assert (account.method, account.target()) == ("POST", "/accounts")
    assert account.body == {"email": "ann@example.com", "country": "US", "plan_id": "standard"}
    assert subscription is not None
    assert (subscription.method, subscription.target()) == ("POST", "/subscriptions")
    assert subscription.body == {
        "member_id": "m9001",
        "plan_id": "standard",
        "trial_days": 30,
        "payment": {"card_last4": "4242"},
    }


def test_an_account_is_never_created_for_a_plan_the_country_does_not_sell():
    """The account builder refuses the request, naming plan_id, when the country does not
    sell the plan."""
    ctx = family.ctx({**SIGNUP, "plan_id": "platinum"}, **_signup_results())
    with pytest.raises(Refused) as refused:
        family.steps("signup")["account"].request(ctx)
    assert (refused.value.error.code, refused.value.error.parameter) == (
        "invalid_parameter",
        "plan_id",
    )


def test_signup_composes_member_plan_trial_and_subscription():
    """The response names the member, the chosen plan, the trial and the subscription."""
    body = family.endpoint("signup").plan.compose(family.ctx(SIGNUP, **_signup_results()))
    assert body == {
        "member_id": "m9001",
        "plan": {
            "id": "standard",
            "name": "Standard",
            "price": 1799,
            "currency": "USD",
            "max_streams": 2,
            "video_quality": "1080p",
        },
        "trial": {"eligible": True, "days": 30, "ends_at": "2026-12-26T07:00:00Z"},
        "subscription": {
            "id": "s77",
            "status": "trialing",
            "next_charge": {"amount": 1799, "currency": "USD", "date": "2026-12-26"},
        },
    }


def test_without_the_trial_service_sign_up_continues_without_a_trial():
    """With the eligibility fallback, billing is asked for no trial days and none is shown."""
    fallback = family.steps("signup")["eligibility"].fallback
    assert fallback is not None
    active = {**TRIALING, "status": "active", "trial_ends_at": None}
    ctx = family.ctx(SIGNUP, **_signup_results(eligibility=fallback.value, subscription=active))
    subscription = family.steps("signup")["subscription"].request(ctx)
    assert subscription is not None
    assert subscription.body["trial_days"] == 0
    body = family.endpoint("signup").plan.compose(ctx)
    assert body["trial"] == {"eligible": False, "days": 0, "ends_at": None}
    assert body["subscription"]["status"] == "active"


def test_an_ineligible_email_gets_no_trial_days_whatever_the_count_says():
    """trial_days only counts when eligible is true."""
    ctx = family.ctx(SIGNUP, **_signup_results(eligibility={"eligible": False, "trial_days": 30}))
    subscription = family.steps("signup")["subscription"].request(ctx)
    assert subscription is not None
    assert subscription.body["trial_days"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"eligibility": {"eligible": "yes", "trial_days": 30}},
        {"eligibility": {"eligible": True, "trial_days": "30"}},
        {"eligibility": {"eligible": True, "trial_days": 3650}},
        {"account": {**ACCOUNT, "member_id": 9001}},
        {"account": {**ACCOUNT, "member_id": "../admin"}},
    ],
)
def test_the_subscription_builder_rejects_wrongly_typed_replies(overrides: dict[str, Any]):
    """Bad eligibility or account data raises in the builder rather than reaching billing."""
    with pytest.raises(ShapeError):
        family.steps("signup")["subscription"].request(
            family.ctx(SIGNUP, **_signup_results(**overrides))
        )


@pytest.mark.parametrize(
    "subscription",
    [
        {**TRIALING, "status": "free-forever"},
        {**TRIALING, "subscription_id": None},
        {**TRIALING, "next_charge": {"amount": 17.99, "currency": "USD", "date": "2026-12-26"}},
        "created",
    ],
)
def test_signup_compose_rejects_a_wrongly_typed_subscription(subscription: Any):
    """A billing reply of the wrong shape fails the request instead of reaching the device."""
    ctx = family.ctx(SIGNUP, **_signup_results(subscription=subscription))
    with pytest.raises(ShapeError):
        family.endpoint("signup").plan.compose(ctx)
