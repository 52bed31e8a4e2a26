"""A prebuilt inverted index over title names and genres, with prefix matching.

Ranking is deterministic: score (title words weigh more than genres, whole words more than
prefixes), then popularity, then catalogue order. Results per normalised query are cached.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from backends.simulated.cache import LruCache
from backends.simulated.catalogue import Catalogue
from backends.simulated.vocab import STOPWORDS

_TOKEN = re.compile(r"[a-z0-9]+")
_NAME_WEIGHT = 3.0
_GENRE_WEIGHT = 1.0
# A query word that is only a prefix of an indexed word (typing in progress) counts for less.
_PREFIX_FACTOR = 0.5
_MIN_PREFIX = 2
_CACHE_SIZE = 4_096


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text``, stopwords removed."""
    return [word for word in _TOKEN.findall(text.lower()) if word not in STOPWORDS]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """All matches of one query, best first."""

    hits: tuple[tuple[str, float], ...]


class SearchIndex:
    """Token -> {title id: weight}, plus prefix -> tokens for partial words."""

    def __init__(self, catalogue: Catalogue) -> None:
        postings: dict[str, dict[str, float]] = defaultdict(dict)
        for title_id in catalogue.ids:
            title = catalogue.get(title_id)
            if title is None:  # pragma: no cover - ids come from the catalogue itself
                continue
            for genre in title.genres:
                for word in tokens(genre):
                    postings[word][title_id] = _GENRE_WEIGHT
            for word in tokens(title.name):
                postings[word][title_id] = _NAME_WEIGHT
        prefixes: dict[str, set[str]] = defaultdict(set)
        for word in postings:
            for end in range(_MIN_PREFIX, len(word)):
                prefixes[word[:end]].add(word)
        self._postings = dict(postings)
        self._prefixes = {prefix: tuple(sorted(words)) for prefix, words in prefixes.items()}
        self._rank = {
            title_id: position for position, title_id in enumerate(catalogue.by_popularity)
        }
        self._cache: LruCache[tuple[str, ...], SearchResult] = LruCache(_CACHE_SIZE)

    def search(self, query: str) -> SearchResult:
        """Every title matching any word of ``query``, best first."""
        return self._cache.get_or_build(tuple(tokens(query)), self._search)

    def _search(self, words: tuple[str, ...]) -> SearchResult:
        scores: dict[str, float] = defaultdict(float)
        for word in words:
            best: dict[str, float] = dict(self._postings.get(word, {}))
            for longer in self._prefixes.get(word, ()):
                for title_id, weight in self._postings[longer].items():
                    best[title_id] = max(best.get(title_id, 0.0), weight * _PREFIX_FACTOR)
            for title_id, weight in best.items():
                scores[title_id] += weight
        ranked = sorted(scores.items(), key=lambda hit: (-hit[1], self._rank[hit[0]]))
        return SearchResult(tuple((title_id, round(score, 3)) for title_id, score in ranked))
