"""Non-member API (team growth): the plans sold in a country, and sign-up with a free trial."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.apis.shaping import Reader, ShapeError
from orchestrator.plans import (
    Auth,
    BackendRequest,
    DeviceError,
    Endpoint,
    Fallback,
    Param,
    Plan,
    Refused,
    Source,
    Step,
    StepContext,
    body,
    boolean,
    get,
    integer,
    obj,
    objects,
    post,
    text,
)

__all__ = ["API", "TEAM", "endpoints"]

#: The family name: the second path segment and the first part of metric names.
API = "nonmember"
#: The team that owns these endpoints.
TEAM = "growth"

_COUNTRY = r"^[A-Z]{2}$"
# RFC 5322 atext local part and a dotted domain: rejects the nonsense without pretending
# to validate deliverability (the accounts service and a confirmation mail do that).
_EMAIL = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
_CARD_LAST4 = r"^[0-9]{4}$"
# A member id goes into a signed token and into other backends' paths: hold it to a sane form.
_MEMBER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUBSCRIPTION_STATUS = re.compile(r"trialing|active")
# Longer than any trial the business offers: a bigger number is a backend bug, not a gift.
_MAX_TRIAL_DAYS = 90
_PLAN_NOT_SOLD = DeviceError(
    "invalid_parameter",
    "Parameter 'plan_id' is invalid: the plan is not offered in this country.",
    "plan_id",
)
_NO_PLANS = {404: DeviceError("not_found", "No plans are offered in this country.", "country")}


def _country_param(source: Source, description: str) -> Param:
    """The country as plans and sign-up take it: ISO 3166-1 alpha-2, upper case."""
    return Param(
        "country",
        source=source,
        required=True,
        max_length=2,
        pattern=_COUNTRY,
        description=description,
        example="US",
    )


def endpoints() -> tuple[Endpoint, ...]:
    """The non-member endpoints: plans and sign-up."""
    plans = Endpoint(
        name="plans",
        api=API,
        team=TEAM,
        method="GET",
        path="/v1/nonmember/plans",
        auth=Auth.PUBLIC,
        plan=Plan(
            (
                Step(
                    "plans",
                    "plans",
                    _plans_request,
                    feeds=frozenset({"currency", "plans"}),
                    device_errors=_NO_PLANS,
                ),
            ),
            _compose_plans,
        ),
        deadline_ms=800,
        summary="The plans on offer in a country, with local prices.",
        fields=_PLANS_FIELDS,
        params=(
            _country_param(Source.QUERY, "ISO 3166-1 alpha-2 country code, upper case (e.g. US)."),
        ),
        example_fields="currency,plans(id,price)",
    )
    signup = Endpoint(
        name="signup",
        api=API,
        team=TEAM,
        method="POST",
        path="/v1/nonmember/signup",
        auth=Auth.PUBLIC,
        # No step declares feeds: sign-up is a write, so every step runs whatever is selected.
        plan=Plan(
            (
                # Without the trial service, sign-up still goes ahead, just without a trial.
                Step(
                    "eligibility",
                    "trial",
                    _eligibility_request,
                    fallback=Fallback.static({"eligible": False, "trial_days": 0}),
                ),
                Step("plan", "plans", _plans_request, device_errors=_NO_PLANS),
                Step(
                    "account",
                    "accounts",
                    _account_request,
                    after=("eligibility", "plan"),
                    device_errors={
                        409: DeviceError(
                            "already_exists", "An account with this e-mail already exists.", "email"
                        )
                    },
                ),
                # Reads the eligibility too; declared so the dependency is visible, not implied.
                Step(
                    "subscription",
                    "billing",
                    _subscription_request,
                    after=("eligibility", "account"),
                    device_errors={
                        402: DeviceError(
                            "payment_declined", "The payment card was declined.", "card_last4"
                        )
                    },
                ),
            ),
            _compose_signup,
        ),
        deadline_ms=2000,
        summary="Create an account and a subscription, with a free trial where eligible.",
        fields=_SIGNUP_FIELDS,
        params=(
            Param(
                "email",
                source=Source.BODY,
                required=True,
                max_length=254,
                pattern=_EMAIL,
                description="The new member's e-mail address; one account per address.",
                example="ava@example.com",
            ),
            _country_param(Source.BODY, "ISO 3166-1 alpha-2 country of the account, upper case."),
            Param(
                "plan_id",
                source=Source.BODY,
                required=True,
                max_length=32,
                description="One of the plan ids that GET /v1/nonmember/plans offers there.",
                example="standard",
            ),
            Param(
                "card_last4",
                source=Source.BODY,
                required=True,
                max_length=4,
                pattern=_CARD_LAST4,
                description="Last four digits of the payment card (the card itself is tokenised).",
                example="4242",
            ),
        ),
        success_status=201,
        grants_member_token=True,
    )
    return (plans, signup)


# -- plans ---------------------------------------------------------------------------------


def _plans_request(ctx: StepContext) -> BackendRequest:
    return get("plans", country=ctx.params["country"])


def _offers(reply: Any, country: str) -> tuple[Reader, list[dict[str, Any]]]:
    """The plans reply and its plans in device shape; a reply for another country is wrong."""
    offer = Reader(reply, "plans")
    if offer.text("country") != country:
        raise ShapeError("plans: the reply is for another country")
    return offer, [_plan(plan) for plan in offer.children("plans")]


def _plan(plan: Reader) -> dict[str, Any]:
    return {
        "id": plan.text("id"),
        "name": plan.text("name"),
        "price": plan.integer("price", minimum=0),  # minor units (cents), as billing charges
        "currency": plan.text("currency"),
        "max_streams": plan.integer("max_streams", minimum=1),
        "video_quality": plan.text("video_quality"),
    }


def _compose_plans(ctx: StepContext) -> dict[str, Any]:
    country = ctx.params["country"]
    if not ctx.has("plans"):  # only the country was asked for
        return {"country": country}
    offer, plans = _offers(ctx.results["plans"], country)
    return {"country": country, "currency": offer.text("currency"), "plans": plans}


# -- sign-up -------------------------------------------------------------------------------


def _eligibility_request(ctx: StepContext) -> BackendRequest:
    return get("eligibility", email=ctx.params["email"])


def _chosen_plan(ctx: StepContext) -> dict[str, Any]:
    _, plans = _offers(ctx.results["plan"], ctx.params["country"])
    for plan in plans:
        if plan["id"] == ctx.params["plan_id"]:
            return plan
    raise Refused(_PLAN_NOT_SOLD)


def _account_request(ctx: StepContext) -> BackendRequest:
    _chosen_plan(ctx)  # no account for a plan the country does not sell
    body = {key: ctx.params[key] for key in ("email", "country", "plan_id")}
    return post("accounts", body=body)


def _trial_days(ctx: StepContext) -> int:
    eligibility = Reader(ctx.results["eligibility"], "trial")
    days = eligibility.integer("trial_days", 0, _MAX_TRIAL_DAYS)
    return days if eligibility.flag("eligible") else 0


def _new_member_id(ctx: StepContext) -> str:
    return Reader(ctx.results["account"], "accounts").text("member_id", _MEMBER_ID)


def _subscription_request(ctx: StepContext) -> BackendRequest:
    body = {
        "member_id": _new_member_id(ctx),
        "plan_id": ctx.params["plan_id"],
        "trial_days": _trial_days(ctx),
        "payment": {"card_last4": ctx.params["card_last4"]},
    }
    return post("subscriptions", body=body)


def _compose_signup(ctx: StepContext) -> dict[str, Any]:
    subscription = Reader(ctx.results["subscription"], "billing")
    charge = subscription.child("next_charge")
    days = _trial_days(ctx)
    return {
        "member_id": _new_member_id(ctx),
        "plan": _chosen_plan(ctx),
        "trial": {
            "eligible": Reader(ctx.results["eligibility"], "trial").flag("eligible"),
            "days": days,
            # Billing is the authority on when the trial ends; no trial, no end.
            "ends_at": subscription.optional_text("trial_ends_at") if days else None,
        },
        "subscription": {
            "id": subscription.text("subscription_id"),
            "status": subscription.text("status", _SUBSCRIPTION_STATUS),
            "next_charge": {
                "amount": charge.integer("amount", minimum=0),
                "currency": charge.text("currency"),
                "date": charge.text("date"),
            },
        },
    }


# -- response fields -----------------------------------------------------------------------

_PLAN = (
    text("id", "The plan id, as sign-up takes it."),
    text("name", "The plan's name."),
    integer("price", "Monthly price in minor units (cents)."),
    text("currency", "ISO 4217 currency code."),
    integer("max_streams", "Screens that may play at once."),
    text("video_quality", "Best quality, e.g. 1080p."),
)

_PLANS_FIELDS = body(
    text("country", "The country asked about."),
    text("currency", "ISO 4217 currency of the prices."),
    objects("plans", "The plans on offer.", *_PLAN),
)

_SIGNUP_FIELDS = body(
    text("member_id", "The new member's id."),
    obj("plan", "The plan subscribed to.", *_PLAN),
    obj(
        "trial",
        "The free trial.",
        boolean("eligible", "Whether the address may have a free trial."),
        integer("days", "Trial length in days (0: none)."),
        text("ends_at", "When the trial ends (ISO 8601); null without one.", nullable=True),
    ),
    obj(
        "subscription",
        "The subscription created.",
        text("id", "The subscription id."),
        text("status", "trialing or active."),
        obj(
            "next_charge",
            "The first charge.",
            integer("amount", "Amount in minor units."),
            text("currency", "ISO 4217 currency code."),
            text("date", "When (ISO 8601 date)."),
        ),
    ),
    text("token", "A bearer token for the new member."),
)
