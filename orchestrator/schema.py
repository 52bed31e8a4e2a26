"""Response schemas: the tree of fields an endpoint's JSON body holds.

One declaration per endpoint feeds three things: the ``fields`` parser (which names are
selectable at each level), the catalog (the tree devices browse) and the OpenAPI document
(the JSON Schema of each response). Team modules build it with the small constructors
below, e.g. ``body(text("query"), objects("results", text("id"), text("title")))``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "Field",
    "Kind",
    "body",
    "boolean",
    "integer",
    "number",
    "obj",
    "objects",
    "text",
    "texts",
]


class Kind(enum.Enum):
    """The JSON type of a field's value (of each item, for a list). Values are JSON Schema's."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"


@dataclass(frozen=True, slots=True)
class Field:
    """One response field: its name, type, whether it is a list or may be null, its children."""

    name: str
    kind: Kind
    description: str = ""
    #: A list of ``kind`` values rather than one.
    many: bool = False
    nullable: bool = False
    children: tuple[Field, ...] = ()
    _by_name: Mapping[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.kind is Kind.OBJECT) != bool(self.children):
            raise ValueError(f"field {self.name!r}: objects, and only objects, have children")
        by_name = {child.name: child for child in self.children}
        if len(by_name) != len(self.children):
            raise ValueError(f"field {self.name!r}: duplicate child names")
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))

    @property
    def names(self) -> tuple[str, ...]:
        """The children's names in declaration order (what a selection may name here)."""
        return tuple(child.name for child in self.children)

    def child(self, name: str) -> Field | None:
        """The child called ``name``, or None."""
        return self._by_name.get(name)

    def depth(self) -> int:
        """Levels of nesting below this field (0 for a scalar)."""
        return 1 + max(child.depth() for child in self.children) if self.children else 0


def _scalar(kind: Kind, name: str, description: str, *, many: bool, nullable: bool) -> Field:
    return Field(name, kind, description, many=many, nullable=nullable)


def text(name: str, description: str = "", *, nullable: bool = False) -> Field:
    """A string field."""
    return _scalar(Kind.STRING, name, description, many=False, nullable=nullable)


def texts(name: str, description: str = "") -> Field:
    """A list of strings."""
    return _scalar(Kind.STRING, name, description, many=True, nullable=False)


def integer(name: str, description: str = "", *, nullable: bool = False) -> Field:
    """An integer field."""
    return _scalar(Kind.INTEGER, name, description, many=False, nullable=nullable)


def number(name: str, description: str = "") -> Field:
    """A number that may have a fraction."""
    return _scalar(Kind.NUMBER, name, description, many=False, nullable=False)


def boolean(name: str, description: str = "") -> Field:
    """A true/false field."""
    return _scalar(Kind.BOOLEAN, name, description, many=False, nullable=False)


def obj(name: str, description: str, *children: Field, nullable: bool = False) -> Field:
    """A nested object."""
    return Field(name, Kind.OBJECT, description, nullable=nullable, children=children)


def objects(name: str, description: str, *children: Field) -> Field:
    """A list of objects of one shape."""
    return Field(name, Kind.OBJECT, description, many=True, children=children)


def body(*children: Field) -> Field:
    """The response body: the unnamed root object."""
    return Field("", Kind.OBJECT, children=children)
