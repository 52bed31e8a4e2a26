"""The weighted endpoint mix and realistic request parameters of device traffic.

``Mix.next()`` draws an endpoint by weight and builds a ``PlannedRequest`` for it: a random
member (with a minted token) among the simulated world's members, popular titles far more
often than the long tail (Zipf), search terms typed as prefixes or whole words, home pages
shaped like a TV's, a phone's or a browser's, and a unique e-mail per sign-up.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote

from backends.simulated.reference import (
    CATALOGUE_SIZE,
    COUNTRIES,
    DEVICES,
    GENERATED_MEMBERS,
    PLAN_TIERS,
)
from backends.simulated.vocab import ADJECTIVES, NOUNS, PLACES

__all__ = ["DEFAULT_MIX", "ENDPOINTS", "Mix", "PlannedRequest", "TokenSource"]

#: Device traffic: mostly browsing, some playing, few sign-ups.
DEFAULT_MIX: Mapping[str, float] = {
    "home": 60,
    "search": 15,
    "title": 10,
    "play": 10,
    "heartbeat": 4,
    "signup": 1,
}

#: Mints (or returns a cached) bearer token for a member id.
TokenSource = Callable[[str], str]

T = TypeVar("T")

# Title popularity follows a Zipf law: a few hits get most plays.
_ZIPF_EXPONENT = 1.0
# (rows, per_row, weight): a TV's home page, a phone's, a large browser window's.
_HOME_SHAPES = ((10, 20, 6), (6, 10, 3), (20, 40, 1))
_SEARCH_LIMITS = ((10, 3), (20, 6), (40, 1))
# The shortest title runs 20 minutes; bookmarks refuses a position past a title's end.
_MAX_POSITION_S = 20 * 60 - 1


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request to send: which endpoint it exercises and what goes on the wire."""

    endpoint: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None = None
    #: The loopback address to send it from ("": the system's choice; client groups).
    source: str = ""


class _Weighted(Generic[T]):
    """Draw items by weight with one ``random()`` and a bisect."""

    def __init__(self, items: list[tuple[T, float]]) -> None:
        self._items = [item for item, _ in items]
        self._cumulative = list(itertools.accumulate(weight for _, weight in items))

    def draw(self, rng: random.Random) -> T:
        point = rng.random() * self._cumulative[-1]
        return self._items[bisect.bisect_right(self._cumulative, point)]


_TITLES = _Weighted(
    [(f"t{rank}", 1.0 / rank**_ZIPF_EXPONENT) for rank in range(1, CATALOGUE_SIZE + 1)]
)
_COUNTRIES = _Weighted([(code, float(country.weight)) for code, country in COUNTRIES.items()])
_PLANS = _Weighted([(tier.plan_id, float(tier.weight)) for tier in PLAN_TIERS])
_HOME = _Weighted([((rows, per_row), float(weight)) for rows, per_row, weight in _HOME_SHAPES])
_LIMITS = _Weighted([(limit, float(weight)) for limit, weight in _SEARCH_LIMITS])
_DEVICE_TYPES = sorted(DEVICES)
_WORDS = [word.lower() for word in (*ADJECTIVES, *NOUNS, *PLACES) if " " not in word]


class Mix:
    """Builds the next request of a weighted endpoint mix."""

    def __init__(
        self,
        weights: Mapping[str, float],
        tokens: TokenSource,
        rng: random.Random,
        run_id: str,
        *,
        member: str | None = None,
    ) -> None:
        """``member``: every member request is that member's (else a random member's)."""
        unknown = sorted(set(weights) - set(ENDPOINTS))
        if unknown:
            raise ValueError(
                f"unknown endpoint {unknown[0]!r}; expected one of {', '.join(ENDPOINTS)}"
            )
        if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("mix weights must be >= 0 and add up to more than 0")
        self.weights = {name: float(w) for name, w in weights.items() if w > 0}
        self._endpoints = _Weighted(list(self.weights.items()))
        self._tokens = tokens
        self._rng = rng
        self._run_id = run_id
        self._signups = itertools.count(1)
        self._member = member

    def next(self) -> PlannedRequest:
        """The next request: an endpoint drawn by weight, with fresh parameters."""
        name = self._endpoints.draw(self._rng)
        return ENDPOINTS[name](self)

    # -- parameters -------------------------------------------------------------------------

    def _member_headers(self) -> tuple[tuple[str, str], ...]:
        member = self._member or f"m{self._rng.randint(1, GENERATED_MEMBERS)}"
        return (("Authorization", f"Bearer {self._tokens(member)}"),)

    def _json(self, name: str, path: str, body: object, *, member: bool) -> PlannedRequest:
        headers = (self._member_headers() if member else ()) + (
            ("Content-Type", "application/json"),
        )
        return PlannedRequest(name, "POST", path, headers, json.dumps(body).encode())

    def _home(self) -> PlannedRequest:
        rows, per_row = _HOME.draw(self._rng)
        path = f"/v1/discovery/home?rows={rows}&per_row={per_row}"
        return PlannedRequest("home", "GET", path, self._member_headers())

    def _search(self) -> PlannedRequest:
        word = self._rng.choice(_WORDS)
        roll = self._rng.random()
        if roll < 0.5:  # noqa: PLR2004 - half the searches are still being typed
            query = word[: self._rng.randint(min(3, len(word)), len(word))]
        elif roll < 0.8:  # noqa: PLR2004 - most of the rest are one whole word
            query = word
        else:
            query = f"{word} {self._rng.choice(_WORDS)}"
        path = f"/v1/discovery/search?q={quote(query)}&limit={_LIMITS.draw(self._rng)}"
        return PlannedRequest("search", "GET", path, self._member_headers())

    def _title(self) -> PlannedRequest:
        path = f"/v1/discovery/titles/{_TITLES.draw(self._rng)}"
        return PlannedRequest("title", "GET", path, self._member_headers())

    def _play(self) -> PlannedRequest:
        body = {"title_id": _TITLES.draw(self._rng), "device_type": self._rng.choice(_DEVICE_TYPES)}
        return self._json("play", "/v1/playback/play", body, member=True)

    def _heartbeat(self) -> PlannedRequest:
        body = {
            "title_id": _TITLES.draw(self._rng),
            "position_s": self._rng.randint(0, _MAX_POSITION_S),
        }
        return self._json("heartbeat", "/v1/playback/heartbeat", body, member=True)

    def _history(self) -> PlannedRequest:
        return PlannedRequest("history", "GET", "/v1/playback/history", self._member_headers())

    def _plans(self) -> PlannedRequest:
        path = f"/v1/nonmember/plans?country={_COUNTRIES.draw(self._rng)}"
        return PlannedRequest("plans", "GET", path, ())

    def _signup(self) -> PlannedRequest:
        body = {
            # Unique per run and per sign-up: the accounts service refuses a known e-mail.
            "email": f"lt-{self._run_id}-{next(self._signups)}@example.com",
            "country": _COUNTRIES.draw(self._rng),
            "plan_id": _PLANS.draw(self._rng),
            "card_last4": f"{self._rng.randint(0, 9999):04d}",
        }
        return self._json("signup", "/v1/nonmember/signup", body, member=False)


#: Every endpoint a mix can name, with the builder of its requests.
ENDPOINTS: Mapping[str, Callable[[Mix], PlannedRequest]] = {
    "home": Mix._home,  # noqa: SLF001 - the table is the class's own dispatch
    "search": Mix._search,  # noqa: SLF001
    "title": Mix._title,  # noqa: SLF001
    "play": Mix._play,  # noqa: SLF001
    "heartbeat": Mix._heartbeat,  # noqa: SLF001
    "history": Mix._history,  # noqa: SLF001
    "plans": Mix._plans,  # noqa: SLF001
    "signup": Mix._signup,  # noqa: SLF001
}
