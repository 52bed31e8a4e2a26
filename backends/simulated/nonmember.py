"""Non-member services: plans, trial eligibility, accounts, billing."""

from __future__ import annotations

import re
from typing import Any

from backends.simulated.context import ServiceContext
from backends.simulated.data import TRIAL_DAYS
from backends.simulated.exchange import (
    HttpError,
    Request,
    Response,
    allow,
    bad_request,
    error,
    not_found,
    ok,
    require_int,
    require_str,
)
from backends.simulated.members import iso_date, iso_time
from backends.simulated.reference import COUNTRIES, PLANS_BY_ID
from backends.simulated.store import AccountExistsError

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_MAX_EMAIL = 254
_MAX_TRIAL_DAYS = 90
_BILLING_PERIOD_S = 30 * 86_400
_DAY_S = 86_400
_CARD_LAST4 = re.compile(r"[0-9]{4}")
#: Like payment providers' test cards: this card is always declined.
DECLINED_CARD_LAST4 = "0002"


def _email(value: object) -> str:
    if not isinstance(value, str) or len(value) > _MAX_EMAIL or not _EMAIL.fullmatch(value):
        raise bad_request("email must be an e-mail address")
    return value


def _country(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in COUNTRIES:
        raise bad_request("country must be a supported ISO country code")
    return value.upper()


def _plan_id(value: object) -> str:
    if not isinstance(value, str) or value not in PLANS_BY_ID:
        raise bad_request(f"plan_id must be one of {', '.join(PLANS_BY_ID)}")
    return value


class NonMemberServices:
    """Handlers of the sign-up family."""

    def __init__(self, context: ServiceContext) -> None:
        self._context = context
        self._world = context.world
        self._store = context.store

    def plans(self, request: Request) -> Response:
        """``GET /plans/plans?country=US``."""
        if request.segments != ("plans",):
            raise not_found()
        allow(request, "GET")
        country = request.query.get("country")
        if not country:
            raise bad_request("country is required")
        offer = self._world.plans(country.upper())
        if offer is None:
            raise not_found("no plans in this country")
        return ok(offer)

    def trial(self, request: Request) -> Response:
        """``GET /trial/eligibility?email=...``."""
        if request.segments != ("eligibility",):
            raise not_found()
        allow(request, "GET")
        email = _email(request.query.get("email"))
        eligible = self._world.trial_eligible(email)
        return ok({"eligible": eligible, "trial_days": TRIAL_DAYS if eligible else 0})

    def accounts(self, request: Request) -> Response:
        """``POST /accounts/accounts``: 201 with the new member, 409 for a known e-mail."""
        if request.segments != ("accounts",):
            raise not_found()
        allow(request, "POST")
        body = request.json_object()
        email = _email(body.get("email"))
        country, plan_id = _country(body.get("country")), _plan_id(body.get("plan_id"))
        try:
            member, created_at = self._store.create_account(email, country, plan_id)
        except AccountExistsError:
            return error(409, "exists")
        reply = {
            "member_id": member.member_id,
            "email": email,
            "country": country,
            "plan_id": plan_id,
            "created_at": iso_time(created_at),
        }
        return ok(reply, 201)

    def billing(self, request: Request) -> Response:
        """``POST /billing/subscriptions``: 201 trialing or active; 402 for a declined card."""
        if request.segments != ("subscriptions",):
            raise not_found()
        allow(request, "POST")
        body = request.json_object()
        member = self._context.member(require_str(body, "member_id"))
        plan_id = _plan_id(body.get("plan_id"))
        trial_days = require_int(body, "trial_days", 0, _MAX_TRIAL_DAYS)
        card_last4 = _card_last4(body.get("payment"))
        if card_last4 == DECLINED_CARD_LAST4:
            raise HttpError(402, "card_declined")
        amount, currency = self._world.price(member.country, plan_id)
        now = self._store.clock()
        trial_end = now + trial_days * _DAY_S
        record: dict[str, Any] = {
            "member_id": member.member_id,
            "plan_id": plan_id,
            "status": "trialing" if trial_days else "active",
            "trial_ends_at": iso_time(trial_end) if trial_days else None,
            "next_charge": {
                "amount": amount,
                "currency": currency,
                "date": iso_date(trial_end if trial_days else now + _BILLING_PERIOD_S),
            },
        }
        subscription_id = self._store.add_subscription(record)
        return ok(
            {
                "subscription_id": subscription_id,
                "status": record["status"],
                "trial_ends_at": record["trial_ends_at"],
                "next_charge": record["next_charge"],
            },
            201,
        )


def _card_last4(payment: object) -> str:
    if not isinstance(payment, dict):
        raise bad_request("payment must be an object with card_last4")
    last4 = payment.get("card_last4")
    if not isinstance(last4, str) or not _CARD_LAST4.fullmatch(last4):
        raise bad_request("payment.card_last4 must be four digits")
    return last4
