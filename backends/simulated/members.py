"""Members: generated on first use from their id and the seed, then cached (bounded).

Any id m1..m100000 exists without start-up cost; accounts created at run time build the
same ``Member`` shape from what was posted (``member_from_account``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backends.simulated import vocab
from backends.simulated.cache import LruCache
from backends.simulated.catalogue import Catalogue
from backends.simulated.reference import (
    COUNTRIES,
    GENERATED_MEMBERS,
    GENRES,
    PLAN_TIERS,
    REFERENCE_EPOCH_S,
)

_CACHE_SIZE = 20_000
_MAX_PROFILES = 5
_MAX_HISTORY = 40
_HISTORY_WINDOW_S = 365 * 86_400
_FIRST_SIGNUP_S = 1_293_840_000  # 2011-01-01: the oldest member_since
# Maturity levels of account holders: most see everything, some restrict themselves.
_MATURITY_WEIGHTS = ((4, 80), (3, 12), (2, 5), (1, 3))
_COUNTRY_CODES = tuple(COUNTRIES)
_COUNTRY_WEIGHTS = tuple(country.weight for country in COUNTRIES.values())
_PLAN_IDS = tuple(tier.plan_id for tier in PLAN_TIERS)
_PLAN_WEIGHTS = tuple(tier.weight for tier in PLAN_TIERS)
_FINISHED_SHARE = 0.6


def iso_time(epoch_s: float) -> str:
    """An ISO-8601 UTC timestamp to the second, e.g. ``2025-12-31T23:59:59Z``."""
    return datetime.fromtimestamp(int(epoch_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(epoch_s: float) -> str:
    """An ISO-8601 UTC date, e.g. ``2025-12-31``."""
    return datetime.fromtimestamp(int(epoch_s), UTC).strftime("%Y-%m-%d")


def stable_int(*parts: object) -> int:
    """A 64-bit integer from ``parts``, stable across runs (unlike ``hash``)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def stable_prefix(*parts: object) -> hashlib.blake2b:
    """The hash state of ``parts`` as ``stable_int`` starts it, for many last parts.

    ``stable_int(*parts, last)`` is ``int.from_bytes(state.digest(), "big")`` of a copy
    ``state`` of it updated with ``str(last).encode()``: hashing the shared prefix once
    makes the same integers at about a third of the cost (a home page scores hundreds of
    titles for one member).
    """
    return hashlib.blake2b("".join(f"{part}:" for part in parts).encode(), digest_size=8)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One title a member watched; ``watched_at`` is epoch seconds."""

    title_id: str
    watched_at: float
    position_s: int
    duration_s: int


@dataclass(frozen=True, slots=True)
class Member:
    """A member account; ``history`` is the seeded viewing history, newest first."""

    member_id: str
    name: str
    country: str
    language: str
    plan_id: str
    maturity_level: int
    profiles: tuple[dict[str, Any], ...]
    member_since: str
    favourite_genres: tuple[str, ...]
    history: tuple[HistoryEntry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The subscriber service's wire form."""
        return {
            "member_id": self.member_id,
            "name": self.name,
            "country": self.country,
            "language": self.language,
            "plan_id": self.plan_id,
            "maturity_level": self.maturity_level,
            "profiles": [dict(profile) for profile in self.profiles],
            "member_since": self.member_since,
        }


def member_number(member_id: str) -> int | None:
    """The number in ``m<number>`` (no sign, no leading zeros), or None."""
    digits = member_id[1:]
    if member_id[:1] != "m" or not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return None
    return int(digits)


def favourite_genres(seed: int, member_id: str) -> tuple[str, ...]:
    """Three genres a member leans towards, stable per member and seed."""
    rng = random.Random(f"taste:{seed}:{member_id}")  # noqa: S311 - simulated data
    return tuple(rng.sample(GENRES, 3))


class MemberDirectory:
    """Generated members m1..m100000 of one seed, built lazily and cached."""

    def __init__(self, seed: int, catalogue: Catalogue) -> None:
        self._seed = seed
        self._catalogue = catalogue
        self._cache: LruCache[str, Member] = LruCache(_CACHE_SIZE)

    def get(self, member_id: str) -> Member | None:
        """The generated member, or None when the id is outside m1..m100000."""
        number = member_number(member_id)
        if number is None or number > GENERATED_MEMBERS:
            return None
        return self._cache.get_or_build(member_id, self._generate)

    def _generate(self, member_id: str) -> Member:
        rng = random.Random(f"member:{self._seed}:{member_id}")  # noqa: S311 - simulated data
        first = rng.choice(vocab.FIRST_NAMES)
        country = rng.choices(_COUNTRY_CODES, weights=_COUNTRY_WEIGHTS)[0]
        levels, level_weights = zip(*_MATURITY_WEIGHTS, strict=True)
        return Member(
            member_id=member_id,
            name=f"{first} {rng.choice(vocab.LAST_NAMES)}",
            country=country,
            language=rng.choice(COUNTRIES[country].languages),
            plan_id=rng.choices(_PLAN_IDS, weights=_PLAN_WEIGHTS)[0],
            maturity_level=rng.choices(levels, weights=level_weights)[0],
            profiles=_profiles(rng, member_id, first),
            member_since=iso_date(rng.uniform(_FIRST_SIGNUP_S, REFERENCE_EPOCH_S)),
            favourite_genres=favourite_genres(self._seed, member_id),
            history=self._history(rng),
        )

    def _history(self, rng: random.Random) -> tuple[HistoryEntry, ...]:
        picks = self._catalogue.sample(rng, rng.randint(0, _MAX_HISTORY))
        unique = list(dict.fromkeys(picks))
        moments = sorted(
            (REFERENCE_EPOCH_S - rng.uniform(0, _HISTORY_WINDOW_S) for _ in unique), reverse=True
        )
        entries = []
        for title_id, watched_at in zip(unique, moments, strict=True):
            title = self._catalogue.get(title_id)
            if title is None:  # pragma: no cover - sampled from the catalogue itself
                continue
            finished = rng.random() < _FINISHED_SHARE
            position = title.duration_s if finished else rng.randint(60, title.duration_s - 60)
            entries.append(HistoryEntry(title_id, int(watched_at), position, title.duration_s))
        return tuple(entries)


def member_from_account(
    seed: int, member_id: str, account: dict[str, Any], created_at: float
) -> Member:
    """The member record of an account created at run time (one profile, no history)."""
    local = str(account["email"]).split("@", 1)[0]
    name = local.replace(".", " ").replace("_", " ").title() or "Member"
    country = str(account["country"])
    return Member(
        member_id=member_id,
        name=name,
        country=country,
        language=COUNTRIES[country].languages[0],
        plan_id=str(account["plan_id"]),
        maturity_level=4,
        profiles=({"id": f"{member_id}-p1", "name": name.split(" ")[0], "kids": False},),
        member_since=iso_date(created_at),
        favourite_genres=favourite_genres(seed, member_id),
    )


def _profiles(rng: random.Random, member_id: str, first: str) -> tuple[dict[str, Any], ...]:
    profiles: list[dict[str, Any]] = [{"id": f"{member_id}-p1", "name": first, "kids": False}]
    for index in range(2, rng.randint(1, _MAX_PROFILES) + 1):
        kids = rng.random() < 0.25  # noqa: PLR2004 - a quarter of extra profiles are for kids
        name = "Kids" if kids and rng.random() < 0.5 else rng.choice(vocab.FIRST_NAMES)  # noqa: PLR2004 - half keep the default name
        profiles.append({"id": f"{member_id}-p{index}", "name": name, "kids": kids})
    return tuple(profiles)
