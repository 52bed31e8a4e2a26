"""The simulated world of one seed: catalogue, members, plans, devices, scores.

Building a ``World`` is the only start-up work (a few tenths of a second); everything after
that is a lookup, a slice or a hash. The same seed always yields the same world.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from backends.simulated.catalogue import Catalogue
from backends.simulated.members import Member, MemberDirectory, stable_int, stable_prefix
from backends.simulated.reference import (
    COUNTRIES,
    DEFAULT_SEED,
    DEVICES,
    GENERIC_DEVICE,
    PLAN_TIERS,
    PLANS_BY_ID,
    DeviceProfile,
)
from backends.simulated.rows import RowPlanner
from backends.simulated.search_index import SearchIndex

#: Share of e-mail addresses eligible for a free trial, in percent.
TRIAL_ELIGIBLE_PERCENT = 85
TRIAL_DAYS = 30
_MATCH_FLOOR = 50
_MATCH_SPAN = 40
_FAVOURITE_BONUS = 10


class World:
    """All seeded data the simulated services serve."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self.catalogue = Catalogue(seed)
        self.members = MemberDirectory(seed, self.catalogue)
        self.rows = RowPlanner(seed, self.catalogue)
        self.search = SearchIndex(self.catalogue)

    def plans(self, country: str) -> dict[str, Any] | None:
        """The plans offered in ``country`` (ISO code), or None where the service is not sold."""
        market = COUNTRIES.get(country)
        if market is None:
            return None
        return {
            "country": market.code,
            "currency": market.currency,
            "plans": [
                {
                    "id": tier.plan_id,
                    "name": tier.name,
                    "price": price,
                    "currency": market.currency,
                    "max_streams": tier.max_streams,
                    "video_quality": tier.video_quality,
                }
                for tier, price in zip(PLAN_TIERS, market.prices, strict=True)
            ],
        }

    def price(self, country: str, plan_id: str) -> tuple[int, str]:
        """Monthly price of a plan in a country: (minor units, currency)."""
        market = COUNTRIES[country]
        index = PLAN_TIERS.index(PLANS_BY_ID[plan_id])
        return market.prices[index], market.currency

    def device(self, device_type: str) -> DeviceProfile:
        """The device's capabilities; unknown types get a conservative generic profile."""
        return DEVICES.get(device_type, GENERIC_DEVICE)

    def match_score(self, member: Member, title_id: str) -> int | None:
        """Predicted match percent 50..99 for a member and a title; None for unknown titles."""
        return self.match_scores(member, (title_id,)).get(title_id)

    def match_scores(self, member: Member, title_ids: Iterable[str]) -> dict[str, int]:
        """``match_score`` of every known title of ``title_ids``, in their order (unknown ids
        are left out); what the ratings service answers, one hash prefix per member."""
        titles = self.catalogue.titles
        # stable_int(seed, "match", member_id, title_id), inlined: this loop is the ratings
        # service's whole cost.
        copy_prefix = stable_prefix(self.seed, "match", member.member_id).copy
        favourites = frozenset(member.favourite_genres)
        scores: dict[str, int] = {}
        for title_id in title_ids:
            title = titles.get(title_id)
            if title is None:
                continue
            state = copy_prefix()
            state.update(title_id.encode())
            score = _MATCH_FLOOR + int.from_bytes(state.digest(), "big") % _MATCH_SPAN
            if not favourites.isdisjoint(title.genres):
                score += _FAVOURITE_BONUS
            scores[title_id] = min(score, 99)
        return scores

    def trial_eligible(self, email: str) -> bool:
        """Whether an e-mail address may start a free trial (about 85% may)."""
        return stable_int(self.seed, "trial", email.lower()) % 100 < TRIAL_ELIGIBLE_PERCENT

    def key_ids(self, title_id: str) -> list[str]:
        """The content key ids of a title (video and audio), stable per seed."""
        return [
            str(
                uuid.UUID(
                    int=(_high(self.seed, title_id, track) << 64) | _low(self.seed, title_id, track)
                )
            )
            for track in ("video", "audio")
        ]


def _high(seed: int, title_id: str, track: str) -> int:
    return stable_int(seed, "key-high", title_id, track)


def _low(seed: int, title_id: str, track: str) -> int:
    return stable_int(seed, "key-low", title_id, track)
