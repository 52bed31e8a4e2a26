"""Home-page recommendation rows: which rows a member sees, and the videos in each.

A member's row plan (kinds, order, seeds, offsets) is derived once from the member and the
seed and cached; a request only slices precomputed lists, so its cost is O(rows x per_row).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backends.simulated.cache import LruCache
from backends.simulated.catalogue import Catalogue
from backends.simulated.members import HistoryEntry, Member, stable_int
from backends.simulated.reference import COUNTRIES, GENRES

#: The most rows a plan holds (beyond an optional continue-watching row).
MAX_ROWS = 50
_TOP = 10
_TRENDING_SINCE_YEAR = 2020
_TRENDING_SIZE = 300
_CACHE_SIZE = 20_000
# A title counts as finished once 95% of it has been watched.
_FINISHED = 0.95


@dataclass(frozen=True, slots=True)
class RowSpec:
    """One row of a member's plan: the pool (``source`` without the id at index ``skip``,
    if any) sliced from ``offset``, wrapping around."""

    row_id: str
    kind: str
    title: str
    source: tuple[str, ...]
    offset: int = 0
    skip: int = -1

    def video_ids(self, count: int) -> list[str]:
        """Up to ``count`` ids from the pool, wrapping around, in a stable order."""
        size = len(self.source) - (self.skip >= 0)
        if size <= 0:
            return []
        count = min(count, size)
        start = self.offset % size
        picked = self._pool(start, min(start + count, size))
        picked.extend(self._pool(0, count - len(picked)))
        return picked

    def _pool(self, begin: int, end: int) -> list[str]:
        """``pool[begin:end]`` from slices of ``source``, never building the pool itself."""
        source, skip = self.source, self.skip
        if skip < 0 or end <= skip:
            return list(source[begin:end])
        if begin >= skip:
            return list(source[begin + 1 : end + 1])
        return [*source[begin:skip], *source[skip + 1 : end + 1]]


class RowPlanner:
    """Builds and caches row plans for one catalogue and seed."""

    def __init__(self, seed: int, catalogue: Catalogue) -> None:
        self._seed = seed
        self._catalogue = catalogue
        popular = catalogue.by_popularity
        self._top: dict[str, tuple[str, ...]] = {}
        for code in COUNTRIES:
            local = list(popular[: _TOP * 3])
            random.Random(f"top:{seed}:{code}").shuffle(local)  # noqa: S311 - simulated data
            self._top[code] = tuple(local[:_TOP])
        recent = [
            tid
            for tid in popular
            if (title := catalogue.get(tid)) is not None and title.year >= _TRENDING_SINCE_YEAR
        ]
        self._trending = tuple(recent[:_TRENDING_SIZE])
        self._plans: LruCache[str, tuple[RowSpec, ...]] = LruCache(_CACHE_SIZE)
        # Rows that do not depend on the member, built on first use: one per catalogue title,
        # one per genre and offset (a fifth of the genre's titles).
        self._because_rows: dict[str, RowSpec] = {}
        self._genre_rows: dict[tuple[str, int], RowSpec] = {}

    def rows(
        self, member: Member, history: Sequence[HistoryEntry], count: int, per_row: int
    ) -> list[dict[str, Any]]:
        """``count`` rows of up to ``per_row`` video ids for ``member``."""
        specs: list[RowSpec] = []
        watching = continue_watching(history)
        if watching:
            name = member.name.split(" ")[0]
            specs.append(
                RowSpec(
                    "continue_watching",
                    "continue_watching",
                    f"Continue Watching for {name}",
                    watching,
                )
            )
        specs.extend(self._plans.get_or_build(member.member_id, lambda _: self._plan(member)))
        return [
            {
                "id": spec.row_id,
                "kind": spec.kind,
                "title": spec.title,
                "video_ids": spec.video_ids(per_row),
            }
            for spec in specs[:count]
        ]

    def _plan(self, member: Member) -> tuple[RowSpec, ...]:
        rng = random.Random(f"rows:{self._seed}:{member.member_id}")  # noqa: S311 - simulated data
        others = [genre for genre in GENRES if genre not in member.favourite_genres]
        rng.shuffle(others)
        genres = [*member.favourite_genres, *others]
        top = self._top.get(member.country, self._top["US"])
        country = COUNTRIES[member.country].name if member.country in COUNTRIES else "Your Country"
        lead = [
            RowSpec("top_10", "top_10", f"Top 10 in {country} Today", top),
            RowSpec("trending", "trending", "Trending Now", self._trending, rng.randrange(5)),
        ]
        seeds = self._seed_titles(member, rng, MAX_ROWS - len(lead) - len(genres))
        because = [self._because(tid) for tid in seeds]
        genre_rows = [self._genre_row(genre, rng) for genre in genres]
        # Interleave the way real home pages do: a personal row between every couple of lists.
        plan = [lead[0], *because[:1], genre_rows[0], lead[1]]
        rest_genres, rest_because = genre_rows[1:], because[1:]
        while rest_genres or rest_because:
            plan.extend(rest_genres[:2])
            plan.extend(rest_because[:1])
            rest_genres, rest_because = rest_genres[2:], rest_because[1:]
        return tuple(plan[:MAX_ROWS])

    def _seed_titles(self, member: Member, rng: random.Random, count: int) -> list[str]:
        watched = [entry.title_id for entry in member.history]
        picks = dict.fromkeys(watched[:count])
        while len(picks) < count:
            picks.update(dict.fromkeys(self._catalogue.sample(rng, count - len(picks))))
        return list(picks)[:count]

    def _because(self, title_id: str) -> RowSpec:
        row = self._because_rows.get(title_id)
        if row is None:
            row = self._build_because(title_id)
            if self._catalogue.get(title_id) is not None:
                self._because_rows[title_id] = row
        return row

    def _build_because(self, title_id: str) -> RowSpec:
        title = self._catalogue.get(title_id)
        genre = title.genres[0] if title is not None else GENRES[0]
        name = title.name if title is not None else title_id
        source = self._catalogue.by_genre[genre]
        # The same title suggests the same neighbours for everyone, like a similarity model.
        offset = stable_int(self._seed, "similar", title_id) % max(1, len(source) // 4)
        # The title itself is left out; by_genre lists each title once.
        skip = source.index(title_id) if title_id in source else -1
        return RowSpec(
            f"because_you_watched:{title_id}",
            "because_you_watched",
            f"Because You Watched {name}",
            source,
            offset,
            skip,
        )

    def _genre_row(self, genre: str, rng: random.Random) -> RowSpec:
        source = self._catalogue.by_genre[genre]
        offset = rng.randrange(max(1, len(source) // 5))
        # A genre has a few hundred possible rows at most: members share them.
        row = self._genre_rows.get((genre, offset))
        if row is None:
            row = RowSpec(f"genre:{genre.lower()}", "genre", genre, source, offset)
            self._genre_rows[genre, offset] = row
        return row


def continue_watching(history: Sequence[HistoryEntry]) -> tuple[str, ...]:
    """Titles started but not finished, most recent first."""
    return tuple(
        entry.title_id for entry in history if 0 < entry.position_s < entry.duration_s * _FINISHED
    )
