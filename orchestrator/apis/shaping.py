"""Reading untrusted backend JSON, and the small shapes the API families share.

Backends are untrusted: every value a compose function or request builder reads goes
through ``Reader``, which checks its type and raises ``ShapeError`` naming the path (never
the value). The framework turns a builder's error into that step's fallback and a
compose error into a 500, so a wrongly typed reply can never leak to a device.

The shared shapes are those that mean the same in every family that uses them: a title id
as devices send it, and the calls to and replies from the subscriber, catalog, ratings
and bookmarks services.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from orchestrator.plans import (
    BackendRequest,
    DeviceError,
    Fallback,
    Param,
    Source,
    StepContext,
    get,
)

__all__ = [
    "CATALOG_BATCH_MAX",
    "MATURITY_LEVELS",
    "MOST_MATURE",
    "TITLE_ID_PATTERN",
    "CatalogField",
    "Reader",
    "ShapeError",
    "artwork",
    "boxart",
    "catalog_attributes",
    "catalog_batch",
    "catalog_index",
    "match_request",
    "match_scores",
    "maturity_level",
    "member_id",
    "no_scores",
    "resume_position",
    "subscriber_request",
    "title_id",
    "title_id_param",
    "title_ids",
    "unique",
    "unknown_title",
    "wanted_fields",
]

#: A catalogue title id; device parameters and backend ids are held to the same form.
TITLE_ID_PATTERN = r"^t[0-9]{1,7}$"
_TITLE_ID = re.compile(TITLE_ID_PATTERN)

#: The catalog's batch endpoint takes at most this many ids per call.
CATALOG_BATCH_MAX = 500

#: The viewer maturity level (0 = youngest, 4 = everything) a rating requires: the US TV
#: Parental Guidelines and MPA ratings on one scale, as the subscriber and catalog services
#: use it. TV-14 sits with PG-13, and TV-MA with R.
MATURITY_LEVELS: Mapping[str, int] = MappingProxyType(
    {"TV-Y": 0, "G": 1, "PG": 2, "PG-13": 3, "TV-14": 3, "R": 4, "TV-MA": 4}
)
#: The level that may watch everything.
MOST_MATURE = max(MATURITY_LEVELS.values())

_ARTWORK_KINDS = ("boxart", "hero", "logo")
_MATCH_MAX = 100


class ShapeError(ValueError):
    """A backend reply does not have the shape its contract promises."""


class Reader:
    """A typed, read-only view of one JSON object from an untrusted backend."""

    __slots__ = ("_data", "_path")

    def __init__(self, value: Any, path: str | _Path) -> None:
        """``path`` names the object in errors: text, or (parent, key, index) for one
        inside another, spelled out only when an error needs it (a home page reads
        thousands of objects and finds no error in any)."""
        if not isinstance(value, Mapping):
            raise ShapeError(f"{_spelled(path)}: expected an object, got {type(value).__name__}")
        self._data: Mapping[Any, Any] = value
        self._path = path

    def has(self, key: str) -> bool:
        """Whether ``key`` is present with a non-null value."""
        return self._data.get(key) is not None

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str:
        """A string (matching ``pattern``, if given)."""
        value = self._data.get(key)
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        if pattern is not None and not pattern.fullmatch(value):
            raise ShapeError(f"{_spelled(self._path)}.{key}: not of the expected form")
        return value

    def optional_text(self, key: str) -> str | None:
        """A string, or None when absent or null."""
        return self.text(key) if self.has(key) else None

    def integer(self, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
        """An integer within the given bounds; booleans and floats are not integers here."""
        value = self._data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(key, "an integer", value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ShapeError(f"{_spelled(self._path)}.{key}: out of range")
        return value

    def flag(self, key: str) -> bool:
        """A boolean."""
        value = self._data.get(key)
        if not isinstance(value, bool):
            raise self._wrong(key, "a boolean", value)
        return value

    def texts(self, key: str, pattern: re.Pattern[str] | None = None) -> list[str]:
        """A list of strings (each matching ``pattern``, if given)."""
        items = self._list(key)
        for item in items:
            if not isinstance(item, str) or (pattern is not None and not pattern.fullmatch(item)):
                raise ShapeError(
                    f"{_spelled(self._path)}.{key}: expected a list of strings of the form"
                )
        return list(items)

    def child(self, key: str) -> Reader:
        """A nested object."""
        return Reader(self._data.get(key), (self._path, key, None))

    def children(self, key: str) -> list[Reader]:
        """A list of objects."""
        path = self._path
        return [Reader(item, (path, key, i)) for i, item in enumerate(self._list(key))]

    def _list(self, key: str) -> list[Any]:
        value = self._data.get(key)
        if not isinstance(value, list):
            raise self._wrong(key, "a list", value)
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> ShapeError:
        # The type name only: the value is backend data and stays out of logs and errors.
        where = _spelled(self._path)
        return ShapeError(f"{where}.{key}: expected {expected}, got {type(value).__name__}")


#: Where an object sits: its parent's path, its key there, and its index in a list.
_Path = tuple[Any, str, int | None]


def _spelled(path: str | _Path) -> str:
    """``subscriber.plan`` or ``catalog.titles[3]``, from a path."""
    if isinstance(path, str):
        return path
    parent, key, index = path
    where = f"{_spelled(parent)}.{key}"
    return where if index is None else f"{where}[{index}]"


def member_id(ctx: StepContext) -> str:
    """The authenticated member; member endpoints always have one, so its absence is a bug."""
    if ctx.member_id is None:
        raise ValueError("a member endpoint ran without a member id")
    return ctx.member_id


def subscriber_request(ctx: StepContext) -> BackendRequest:
    """``GET /members/{member}``: the member's account (plan, country, maturity level)."""
    return get("members", member_id(ctx))


def title_id_param(name: str, source: Source, description: str) -> Param:
    """A required title id from the device, of the catalogue's form (so at most 8 characters)."""
    return Param(
        name,
        source=source,
        required=True,
        max_length=8,
        pattern=TITLE_ID_PATTERN,
        description=description,
        example="t42",
    )


def unknown_title(param: str) -> dict[int, DeviceError]:
    """A step's device errors when its backend answers 404 for the title ``param`` names."""
    return {404: DeviceError("not_found", "There is no title with this id.", param)}


def unique(ids: Iterable[str]) -> list[str]:
    """``ids`` without repeats, first occurrence kept (rows list the same title twice)."""
    return list(dict.fromkeys(ids))


def title_ids(reader: Reader, key: str) -> list[str]:
    """A list of title ids; each must look like one, since ids travel on to other backends."""
    return reader.texts(key, _TITLE_ID)


def title_id(reader: Reader, key: str) -> str:
    """One title id of the catalogue's form."""
    return reader.text(key, _TITLE_ID)


def catalog_batch(ids: Sequence[str], fields: Sequence[str]) -> BackendRequest | None:
    """``GET /catalog/titles`` for ``ids`` with only ``fields``; None when there is nothing to ask.

    ``fields`` pushes the projection down to the catalog, so it does not ship synopses
    that a list of boxarts never shows.
    """
    if not ids:
        return None
    if len(ids) > CATALOG_BATCH_MAX:
        raise ValueError(f"a catalog batch takes at most {CATALOG_BATCH_MAX} ids")
    return get("titles", ids=",".join(ids), fields=",".join(fields))


def catalog_index(reply: Any, wanted: Collection[str]) -> dict[str, Reader]:
    """Titles of a catalog batch reply by id; titles nobody asked for are ignored."""
    titles = Reader(reply, "catalog").children("titles")
    index: dict[str, Reader] = {}
    for title in titles:
        found = title_id(title, "id")
        if found in wanted:
            index[found] = title
    return index


def artwork(title: Reader) -> dict[str, str | None]:
    """A title's images ``{"boxart", "hero", "logo"}`` (each a URL, or None when not sent).

    The contract nests them under ``artwork``; the simulated catalogue currently sends
    them flat (and ``fields`` projects them flat), so both forms are read, here only.
    """
    source = title.child("artwork") if title.has("artwork") else title
    return {kind: source.optional_text(kind) for kind in _ARTWORK_KINDS}


def boxart(title: Reader) -> str:
    """A title's boxart URL, which every title card shows."""
    url = artwork(title)["boxart"]
    if url is None:
        raise ShapeError("catalog: a title has no boxart")
    return url


def maturity_level(rating: str) -> int:
    """The level a rating requires; an unknown rating fails closed as the most mature."""
    return MATURITY_LEVELS.get(rating, MOST_MATURE)


def match_request(ctx: StepContext, ids: Sequence[str]) -> BackendRequest | None:
    """``GET /match/{member}`` scoring ``ids`` for the member; None when there is nothing to ask."""
    if not ids:
        return None
    return get("match", member_id(ctx), ids=",".join(ids))


def no_scores() -> Fallback:
    """Without match scores a page still renders; cards just show no match percentage."""
    return Fallback.static({"scores": {}})


def match_scores(ratings: Any, ids: Iterable[str]) -> dict[str, int]:
    """The member's match percent for each of ``ids`` that a ratings reply scores."""
    scores = Reader(ratings, "ratings").child("scores")
    return {tid: scores.integer(tid, 0, _MATCH_MAX) for tid in ids if scores.has(tid)}


def resume_position(ctx: StepContext, step: str) -> int | None:
    """Where the member stopped watching, as the bookmarks ``step`` read it; None without it."""
    if not ctx.has(step):
        return None
    return Reader(ctx.results[step], "bookmarks").integer("position_s", minimum=0)


@dataclass(frozen=True, slots=True)
class CatalogField:
    """A response field made of catalog attributes: what to ask the catalog for, how to read it.

    ``sources`` pairs each dotted path below the field's object with the catalog attribute
    it shows, so a selection of ``artwork(boxart)`` asks the catalog for ``boxart`` only.
    """

    key: str
    sources: tuple[tuple[str, str], ...]
    read: Callable[[Reader], Any]

    @classmethod
    def plain(cls, key: str, read: Callable[[Reader], Any]) -> CatalogField:
        """A field shown as the catalog attribute of the same name."""
        return cls(key, ((key, key),), read)


def _below(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path


def catalog_attributes(
    ctx: StepContext,
    prefix: str,
    fields: Sequence[CatalogField],
    always: Collection[str] = (),
) -> list[str]:
    """The catalog attributes the selected ``fields`` under ``prefix`` need, plus ``always``.

    This is the selection pushed down: the catalog ships only what the device will see.
    """
    wanted = (
        attribute
        for catalog_field in fields
        for path, attribute in catalog_field.sources
        if attribute in always or ctx.wants(_below(prefix, path))
    )
    return unique(wanted)


def wanted_fields(
    ctx: StepContext, prefix: str, fields: Sequence[CatalogField]
) -> tuple[CatalogField, ...]:
    """The ``fields`` under ``prefix`` the device selected (decided once, not per title)."""
    return tuple(f for f in fields if ctx.wants(_below(prefix, f.key)))
