"""The seeded catalogue: titles t1..tN with plausible names, synopses, ratings and artwork.

Everything a handler needs per request is precomputed here once (pre-serialised JSON,
popularity order, per-genre lists, sampling weights), so no request does O(catalogue) work.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.simulated import vocab
from backends.simulated.reference import (
    ADULT_GENRES,
    CATALOGUE_SIZE,
    GENRES,
    KIDS_GENRES,
    MATURITY_LEVELS,
    MOVIE_RATINGS,
    SERIES_RATINGS,
)

#: Attributes a client may ask for with ``fields``; ``id`` is always returned.
TITLE_FIELDS: tuple[str, ...] = (
    "id",
    "title",
    "synopsis",
    "year",
    "genres",
    "maturity_rating",
    "maturity_level",
    "type",
    "duration_s",
    "seasons",
    "popularity",
    "boxart",
    "hero",
    "logo",
)

_IMAGE_HOST = "https://img.example.invalid"
_OLDEST_YEAR = 1950
_NEWEST_YEAR = 2026
_SERIES_SHARE = 0.4
# Retries before a clashing generated name gets a disambiguating suffix.
_NAME_ATTEMPTS = 12


@dataclass(frozen=True, slots=True)
class Title:
    """One title; ``to_json`` is its wire form (``title_id`` is sent as ``id``)."""

    title_id: str
    name: str
    synopsis: str
    year: int
    genres: tuple[str, ...]
    maturity_rating: str
    maturity_level: int
    kind: str
    duration_s: int
    seasons: int | None
    popularity: float
    boxart: str
    hero: str
    logo: str

    def to_json(self) -> dict[str, Any]:
        """The wire representation, keys in ``TITLE_FIELDS`` order."""
        return {
            "id": self.title_id,
            "title": self.name,
            "synopsis": self.synopsis,
            "year": self.year,
            "genres": list(self.genres),
            "maturity_rating": self.maturity_rating,
            "maturity_level": self.maturity_level,
            "type": self.kind,
            "duration_s": self.duration_s,
            "seasons": self.seasons,
            "popularity": self.popularity,
            "boxart": self.boxart,
            "hero": self.hero,
            "logo": self.logo,
        }


class Catalogue:
    """All titles of one seed, with the indexes the services read."""

    def __init__(self, seed: int, size: int = CATALOGUE_SIZE) -> None:
        rng = random.Random(f"catalogue:{seed}")  # noqa: S311 - simulated data, not security
        ranks = list(range(1, size + 1))
        rng.shuffle(ranks)
        names: set[str] = set()
        titles = [
            _make_title(rng, number, ranks[number - 1], names) for number in range(1, size + 1)
        ]
        self._titles: dict[str, Title] = {title.title_id: title for title in titles}
        #: Every title by id, for loops over hundreds of ids (no method call per id).
        self.titles: Mapping[str, Title] = self._titles
        self._wire: dict[str, dict[str, Any]] = {t.title_id: t.to_json() for t in titles}
        self._fragments: dict[str, bytes] = {
            tid: json.dumps(wire, separators=(",", ":")).encode()
            for tid, wire in self._wire.items()
        }
        ordered = sorted(titles, key=lambda t: (-t.popularity, t.title_id))
        #: Every title id, t1 first.
        self.ids: tuple[str, ...] = tuple(title.title_id for title in titles)
        #: Title ids from most to least popular.
        self.by_popularity: tuple[str, ...] = tuple(title.title_id for title in ordered)
        #: Per genre, its title ids from most to least popular.
        self.by_genre: dict[str, tuple[str, ...]] = {
            genre: tuple(t.title_id for t in ordered if genre in t.genres) for genre in GENRES
        }
        self._cumulative = list(itertools.accumulate(t.popularity for t in titles))

    def __len__(self) -> int:
        return len(self._titles)

    def get(self, title_id: str) -> Title | None:
        """The title, or None for an unknown id."""
        return self._titles.get(title_id)

    def fragment(self, title_id: str) -> bytes:
        """The title's full JSON object, serialised once at start-up."""
        return self._fragments[title_id]

    def project(self, title_id: str, fields: Iterable[str]) -> dict[str, Any]:
        """The title's JSON object reduced to ``fields`` (plus ``id``)."""
        wire = self._wire[title_id]
        projected = {"id": title_id}
        projected.update((name, wire[name]) for name in fields)
        return projected

    def sample(self, rng: random.Random, count: int) -> list[str]:
        """``count`` title ids drawn by popularity (with repeats), for seeded histories."""
        return rng.choices(self.ids, cum_weights=self._cumulative, k=count)


def _make_title(rng: random.Random, number: int, rank: int, names: set[str]) -> Title:
    title_id = f"t{number}"
    kind = "series" if rng.random() < _SERIES_SHARE else "movie"
    genres = tuple(rng.sample(GENRES, rng.choice((1, 2, 2, 3))))
    rating = _rating(rng, kind, genres)
    art = f"{rng.getrandbits(32):08x}"
    return Title(
        title_id=title_id,
        name=_unique_name(rng, names),
        synopsis=_synopsis(rng),
        year=max(_OLDEST_YEAR, _NEWEST_YEAR - int(abs(rng.gauss(0, 14)))),
        genres=genres,
        maturity_rating=rating,
        maturity_level=MATURITY_LEVELS[rating],
        kind=kind,
        duration_s=60 * (rng.randint(20, 65) if kind == "series" else rng.randint(80, 180)),
        seasons=rng.randint(1, 8) if kind == "series" else None,
        # Zipf-like: a few hits, a long tail.
        popularity=round(100.0 * rank**-0.6, 3),
        boxart=f"{_IMAGE_HOST}/boxart/{title_id}-{art}.jpg",
        hero=f"{_IMAGE_HOST}/hero/{title_id}-{art}.jpg",
        logo=f"{_IMAGE_HOST}/logo/{title_id}-{art}.png",
    )


def _rating(rng: random.Random, kind: str, genres: Sequence[str]) -> str:
    ratings = SERIES_RATINGS if kind == "series" else MOVIE_RATINGS
    if KIDS_GENRES.intersection(genres):
        return ratings[0] if rng.random() < 0.7 else ratings[1]  # noqa: PLR2004 - share of kids titles rated lowest
    if ADULT_GENRES.intersection(genres):
        return ratings[-1] if rng.random() < 0.7 else ratings[-2]  # noqa: PLR2004 - same, at the top
    return rng.choice(ratings)


def _unique_name(rng: random.Random, names: set[str]) -> str:
    name = ""
    for _ in range(_NAME_ATTEMPTS):
        name = _name(rng)
        if name not in names:
            break
    else:
        # Deterministic and still plausible: sequels are how real catalogues disambiguate.
        name = next(f"{name} {n}" for n in itertools.count(2) if f"{name} {n}" not in names)
    names.add(name)
    return name


def _name(rng: random.Random) -> str:
    noun, noun2 = rng.sample(vocab.NOUNS, 2)
    name = rng.choice(vocab.TITLE_PATTERNS).format(
        adj=rng.choice(vocab.ADJECTIVES),
        noun=noun,
        noun2=noun2,
        place=rng.choice(vocab.PLACES),
        first=rng.choice(vocab.FIRST_NAMES),
    )
    return name[0].upper() + name[1:]  # places like "the Coast" may open a title


def _synopsis(rng: random.Random) -> str:
    place = rng.choice(vocab.PLACES)
    thing = rng.choice(vocab.THINGS).format(noun=rng.choice(vocab.NOUNS).lower())
    mission = rng.choice(vocab.MISSIONS).format(place=place, thing=thing)
    first = f"{rng.choice(vocab.ROLES)} {mission}."
    sentence = first[0].upper() + first[1:]
    if rng.random() < 0.5:  # noqa: PLR2004 - half the synopses have a second sentence
        coda = rng.choice(vocab.CODAS).format(place=place)
        sentence = f"{sentence} {coda[0].upper()}{coda[1:]}"
    return sentence
