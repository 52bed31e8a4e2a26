"""Partial responses: the ``fields`` grammar, the selection tree it parses to, and projection.

The widely used partial-response syntax::

    selection := item ("," item)*
    item      := "*" | name ("/" name)* ["(" selection ")"]
    name      := [A-Za-z_][A-Za-z0-9_]*

``rows(title,videos(id,title))`` asks for each row's title and its videos' ids and titles;
``a/b`` is shorthand for ``a(b)``; ``*`` selects every field of its level in full, and a
nested selection next to it narrows that one field (``rows(*,videos(id))``). Spaces around
names and punctuation are ignored. Naming a field twice merges the two selections.

Pure code: ``parse_fields`` validates against the endpoint's ``Field`` schema and raises an
``invalid_fields`` problem naming the 1-based character where the text went wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

from orchestrator.frontend import problems
from orchestrator.schema import Field, Kind

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Selection", "parse_fields", "project"]

#: Longest ``fields`` value accepted: far above any real selection, far below abuse.
MAX_LENGTH = 1024
#: Deepest nesting accepted, counted in names (``rows(videos(images(boxart)))`` is 4).
MAX_DEPTH = 8

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_PART = _NAME_START | frozenset("0123456789")
_SPACE = " \t"


@dataclass(frozen=True, slots=True)
class Selection:
    """An immutable, canonical selection of one level's fields (hashable: a cache key).

    ``every`` selects every field of the level in full; ``names`` holds the named fields, by
    name, each with the selection of its own children. ``Selection.ALL`` (every field, no
    narrowing) is what a bare name selects beneath it. Build one with ``Selection.of``,
    which merges repeats and drops what ``every`` already covers.
    """

    names: tuple[tuple[str, Selection], ...] = ()
    every: bool = False

    ALL: ClassVar[Selection]

    @classmethod
    def of(
        cls, names: Mapping[str, Selection] | Sequence[tuple[str, Selection]], *, every: bool
    ) -> Selection:
        """The canonical selection of ``names`` (merged, sorted), plus ``*`` if ``every``."""
        merged: dict[str, Selection] = {}
        items = names.items() if isinstance(names, Mapping) else names
        for name, sub in items:
            merged[name] = merged[name].merge(sub) if name in merged else sub
        kept = sorted((name, sub) for name, sub in merged.items() if not (every and sub.is_all))
        if every and not kept:
            return _ALL
        return cls(tuple(kept), every)

    @property
    def is_all(self) -> bool:
        """Selects everything at this level and below."""
        return self.every and not self.names

    def child(self, name: str) -> Selection | None:
        """The selection beneath field ``name``, or None if the field is not selected."""
        for key, sub in self.names:
            if key == name:
                return sub
        return _ALL if self.every else None

    def merge(self, other: Selection) -> Selection:
        """Both selections at once (``a(b),a(c)`` is ``a(b,c)``)."""
        if self.is_all or other.is_all:
            return _ALL
        return Selection.of([*self.names, *other.names], every=self.every or other.every)

    def wants(self, path: tuple[str, ...]) -> bool:
        """Whether any part of the field at ``path`` (names from the root) is selected."""
        node = self
        for name in path:
            if node.is_all:
                return True
            found = node.child(name)
            if found is None:
                return False
            node = found
        return True

    def __str__(self) -> str:
        """The canonical text, which ``parse_fields`` reads back to an equal selection."""
        parts = ["*"] if self.every else []
        parts.extend(name if sub.is_all else f"{name}({sub})" for name, sub in self.names)
        return ",".join(parts)


_ALL = Selection((), every=True)
Selection.ALL = _ALL


def parse_fields(
    text: str,
    schema: Field | None = None,
    *,
    max_length: int = MAX_LENGTH,
    max_depth: int = MAX_DEPTH,
) -> Selection:
    """Parse a ``fields`` value, checking names against ``schema`` (the body) if given."""
    if len(text) > max_length:
        raise problems.invalid_fields(f"longer than {max_length} characters", max_length + 1)
    return _Parser(text, max_depth).parse(schema)


def project(value: Any, selection: Selection) -> Any:
    """``value`` reduced to ``selection``: objects keep selected keys, lists each item's."""
    if selection.is_all:
        return value
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            sub = selection.child(key)
            if sub is not None:
                kept[key] = project(item, sub)
        return kept
    if isinstance(value, list):
        return [project(item, selection) for item in value]
    return value  # a scalar (the schema forbids selecting inside one) or null


class _Parser:
    """Recursive descent over the text; recursion is bounded by ``max_depth``."""

    def __init__(self, text: str, max_depth: int) -> None:
        self._text = text
        self._pos = 0
        self._max_depth = max_depth

    def parse(self, schema: Field | None) -> Selection:
        self._skip()
        if self._pos == len(self._text):
            self._fail("empty selection; name at least one field")
        selection = self._list(schema, (), 1)
        if self._pos < len(self._text):
            char = self._text[self._pos]
            reason = "unbalanced ')'" if char == ")" else f"expected ',' but found {char!r}"
            self._fail(reason)
        return selection

    def _list(self, schema: Field | None, path: tuple[str, ...], depth: int) -> Selection:
        names: list[tuple[str, Selection]] = []
        every = False
        while True:
            item = self._item(schema, path, depth)
            if item is None:
                every = True
            else:
                names.append(item)
            self._skip()
            if self._peek() != ",":
                return Selection.of(names, every=every)
            self._pos += 1

    def _item(
        self, schema: Field | None, path: tuple[str, ...], depth: int
    ) -> tuple[str, Selection] | None:
        """One item: ``None`` for ``*``, else the name and what is selected beneath it."""
        self._skip()
        if self._peek() == "*":
            self._pos += 1
            self._skip()
            if self._peek() in {"(", "/"}:
                self._fail("'*' takes no nested selection")
            return None
        start = self._pos
        name = self._name()
        field = self._field(schema, name, path, start)
        self._skip()
        opener = self._peek()
        if opener not in {"(", "/"}:
            return name, _ALL
        where = ".".join((*path, name))
        if field is not None and field.kind is not Kind.OBJECT:
            self._fail(f"'{where}' has no fields to select from")
        if depth >= self._max_depth:
            self._fail(f"nested deeper than {self._max_depth} levels")
        opened_at = self._pos
        self._pos += 1
        inner_path = (*path, name)
        if opener == "/":
            item = self._item(field, inner_path, depth + 1)
            sub = _ALL if item is None else Selection.of([item], every=False)
            return name, sub
        sub = self._list(field, inner_path, depth + 1)
        self._skip()
        if self._peek() != ")":
            found = self._peek()
            seen = f"found {found!r}" if found else "the text ended"
            self._fail(f"expected ')' to close '(' at character {opened_at + 1}, but {seen}")
        self._pos += 1
        return name, sub

    def _name(self) -> str:
        start = self._pos
        text = self._text
        if start >= len(text) or text[start] not in _NAME_START:
            found = repr(text[start]) if start < len(text) else "the end"
            self._fail(f"expected a field name but found {found}")
        end = start + 1
        while end < len(text) and text[end] in _NAME_PART:
            end += 1
        self._pos = end
        return text[start:end]

    def _field(
        self, schema: Field | None, name: str, path: tuple[str, ...], start: int
    ) -> Field | None:
        """The schema of ``name`` at this level; an unknown name is a problem naming the valid."""
        if schema is None:
            return None
        found = schema.child(name)
        if found is None:
            where = ".".join(path) or "the response"
            raise problems.invalid_fields(
                f"unknown field '{name}' in {where}", start + 1, allowed=schema.names
            )
        return found

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else ""

    def _skip(self) -> None:
        text = self._text
        while self._pos < len(text) and text[self._pos] in _SPACE:
            self._pos += 1

    def _fail(self, reason: str) -> NoReturn:
        raise problems.invalid_fields(reason, self._pos + 1)
