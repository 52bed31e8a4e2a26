"""The catalog service's encoded titles: each title's JSON object per field list, encoded once.

Devices ask for a handful of field lists (a home page's, a search page's ...), each for
hundreds of titles per call, so a batch body is spliced from per-title fragments instead of
projecting and encoding every title on every call. A fragment is exactly what encoding the
projected object gives (``exchange.encode``), so the bytes on the wire do not change.

Bounded: at most ``field_lists`` field lists are kept (least recently used dropped first),
each with at most one fragment per catalogue title.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from backends.simulated.cache import LruCache
from backends.simulated.catalogue import Catalogue
from backends.simulated.exchange import encode

#: Field lists kept; every client of the catalog uses a few.
DEFAULT_FIELD_LISTS = 16


class Projections:
    """Encoded title objects, full or reduced to a field list, for one catalogue."""

    def __init__(self, catalogue: Catalogue, field_lists: int = DEFAULT_FIELD_LISTS) -> None:
        self._catalogue = catalogue
        # Every field: the fragments the catalogue serialised at start-up, all present.
        self._full = {title_id: catalogue.fragment(title_id) for title_id in catalogue.ids}
        self._by_fields: LruCache[tuple[str, ...], dict[str, bytes]] = LruCache(field_lists)

    def __len__(self) -> int:
        """Field lists currently kept."""
        return len(self._by_fields)

    def title(self, title_id: str, fields: tuple[str, ...] | None) -> bytes:
        """One known title's JSON object, every field for ``None`` (``KeyError`` for an
        unknown id)."""
        if self._catalogue.get(title_id) is None:
            raise KeyError(title_id)
        return self._parts([title_id], fields)[0]

    def batch(self, title_ids: Sequence[str], fields: tuple[str, ...] | None) -> bytes:
        """``{"titles": [...]}`` for the known titles of ``title_ids``, in their order."""
        return b'{"titles":[' + b",".join(self._parts(title_ids, fields)) + b"]}"

    def _parts(self, title_ids: Sequence[str], fields: tuple[str, ...] | None) -> list[bytes]:
        cached = self._full if fields is None else self._by_fields.get_or_build(fields, _empty)
        # One dictionary lookup per id at C speed; misses (ids not encoded yet, or unknown)
        # are rare once a field list has been asked for a while.
        parts = list(map(cached.get, title_ids))
        if all(parts):  # no None: every id was found (a fragment is never empty)
            return cast("list[bytes]", parts)
        found: list[bytes] = []
        for title_id, part in zip(title_ids, parts, strict=True):
            if part is not None:
                found.append(part)
            elif fields is not None and self._catalogue.get(title_id) is not None:
                found.append(_encode(self._catalogue, cached, title_id, fields))
        return found


def _empty(_: tuple[str, ...]) -> dict[str, bytes]:
    return {}


def _encode(
    catalogue: Catalogue, cached: dict[str, bytes], title_id: str, fields: tuple[str, ...]
) -> bytes:
    fragment = encode(catalogue.project(title_id, fields))
    cached[title_id] = fragment
    return fragment
