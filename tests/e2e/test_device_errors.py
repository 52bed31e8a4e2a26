"""A backend refusing what the device asked for is the device's 4xx, not a 503.

Each endpoint maps the backend statuses that mean "your request was wrong" to a problem
code; a refusal Frontdoor itself made (breaker open) is a 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the fixture's type; conftest is not importable when suites mix
    from conftest import Stack

import pytest
import requests

from actors.breaker import Override

pytestmark = pytest.mark.e2e

_UNKNOWN_TITLE = "t9999999"


def _problem(reply: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["code"] == code
    assert "127.0.0.1" not in reply.text
    assert "Traceback" not in reply.text
    return body


def _signup(stack: Stack, email: str, card_last4: str = "4242") -> requests.Response:
    body = {"email": email, "country": "US", "plan_id": "basic", "card_last4": card_last4}
    return stack.post("/v1/nonmember/signup", body, auth=False)


def test_signing_up_twice_with_one_email_is_a_409_naming_the_email(stack: Stack):
    """The accounts service's 409 becomes already_exists on the e-mail parameter."""
    assert _signup(stack, "twice@example.com").status_code == 201
    body = _problem(_signup(stack, "twice@example.com"), 409, "already_exists")
    assert body["parameter"] == "email"


def test_a_declined_card_is_a_402(stack: Stack):
    """Billing's 402 becomes payment_declined on card_last4."""
    body = _problem(_signup(stack, "declined@example.com", "0002"), 402, "payment_declined")
    assert body["parameter"] == "card_last4"


def test_plans_for_a_country_without_an_offer_are_a_404(stack: Stack):
    """No plans in a well-formed but unserved country is not_found on country."""
    reply = stack.get("/v1/nonmember/plans?country=ZZ", auth=False)
    assert _problem(reply, 404, "not_found")["parameter"] == "country"


def test_an_unknown_title_is_a_404_on_the_title_page_and_in_play(stack: Stack):
    """The catalog's and the playback service's 404 are the device's not_found."""
    page = _problem(stack.get(f"/v1/discovery/titles/{_UNKNOWN_TITLE}"), 404, "not_found")
    assert page["parameter"] == "id"
    play = stack.post("/v1/playback/play", {"title_id": _UNKNOWN_TITLE, "device_type": "ps5"})
    assert _problem(play, 404, "not_found")["parameter"] == "title_id"


def test_a_heartbeat_past_the_end_of_the_title_is_a_400_on_position(stack: Stack):
    """The bookmarks service's 400 for a position past the end names position_s."""
    beat = {"title_id": "t7", "position_s": 86_000}
    body = _problem(stack.post("/v1/playback/heartbeat", beat), 400, "invalid_parameter")
    assert body["parameter"] == "position_s"


@pytest.fixture
def catalog_open(stack: Stack) -> Iterator[None]:
    """The catalog's breaker forced open for one test, then back to automatic."""
    stack.frontdoor.system.force_breaker("catalog", Override.FORCE_OPEN)
    yield
    stack.frontdoor.system.force_breaker("catalog", None)


@pytest.mark.usefixtures("catalog_open")
def test_a_dependency_refused_by_an_open_breaker_says_when_to_retry(stack: Stack):
    """A short-circuited required call is a 503 with Retry-After; a failed one has none."""
    reply = stack.get("/v1/discovery/titles/t42")
    _problem(reply, 503, "dependency_unavailable")
    assert reply.headers["Retry-After"] == "1"


def test_a_dependency_that_failed_gives_no_retry_after(stack: Stack):
    """A backend that answered 5xx gives no promise of when it recovers."""
    stack.fault("catalog", error_rate=1.0)
    reply = stack.get("/v1/discovery/titles/t42")
    _problem(reply, 503, "dependency_unavailable")
    assert "Retry-After" not in reply.headers


def test_a_plan_the_country_does_not_sell_is_a_400_on_plan_id(stack: Stack):
    """Known only after the plans lookup: the builder refuses before any account exists."""
    body = {
        "email": "nowhere@example.com",
        "country": "US",
        "plan_id": "gold",
        "card_last4": "4242",
    }
    reply = stack.post("/v1/nonmember/signup", body, auth=False)
    assert _problem(reply, 400, "invalid_parameter")["parameter"] == "plan_id"
    assert _signup(stack, "nowhere@example.com").status_code == 201
