"""backends.transports: spec.transport picks the implementation; one list of names."""

from __future__ import annotations

import dataclasses

import pytest

from backends.gevent_transport import GeventTransport
from backends.requests_transport import RequestsTransport
from backends.specs import DEFAULT_TRANSPORT, TRANSPORT_NAMES, BackendSpec
from backends.transports import TRANSPORTS, make_transport

SPEC = BackendSpec(name="catalog", base_url="http://catalog.test")


def test_every_configurable_name_has_a_transport():
    """The names configuration accepts are exactly the ones the factory builds."""
    assert set(TRANSPORTS) == set(TRANSPORT_NAMES)
    assert DEFAULT_TRANSPORT in TRANSPORT_NAMES


@pytest.mark.parametrize(
    ("name", "expected"), [("gevent", GeventTransport), ("requests", RequestsTransport)]
)
def test_make_transport_builds_what_the_spec_names(name, expected):
    """spec.transport selects the implementation."""
    wire = make_transport(dataclasses.replace(SPEC, transport=name))
    assert type(wire) is expected
    wire.close()


def test_the_default_is_geventhttpclient():
    """A spec that names no transport gets the gevent one."""
    wire = make_transport(SPEC)
    assert type(wire) is GeventTransport
    wire.close()


def test_an_unknown_name_is_refused():
    """A name outside the table is the caller's bug, said plainly."""
    with pytest.raises(ValueError, match="unknown transport 'curl'; expected one of gevent"):
        make_transport(dataclasses.replace(SPEC, transport="curl"))
