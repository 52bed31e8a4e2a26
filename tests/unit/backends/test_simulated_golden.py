"""The simulated services answer byte for byte what they answered before their caches and
fast paths: a fixed set of requests, replayed in order, digests to a recorded value.

The digest was recorded from the services as they were before the encoded-title cache,
the batch scoring, the shared rows and the list fast path (commit 26e5214). If a change
alters any answer on purpose, record the new digest and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator

from backends.simulated import World
from backends.simulated.exchange import Request
from backends.simulated.services import Services
from backends.simulated.store import Store

GOLDEN_SHA256 = "485299bdf0ed91ccf63f06dd24ee72c902da48289b2b84bc3e5cb068c8439a3e"
FIELD_LISTS = (
    "title,year,genres,maturity_rating,boxart",
    "title,year,boxart",
    "title",
    "id, title ,title,,hero,logo",
    "synopsis,seasons,popularity,duration_s,type,maturity_level",
)
NOW = 1_790_000_000.0


def requests() -> Iterator[tuple[str, str, tuple[str, ...], dict[str, str], bytes]]:
    """Every service, seeded ids and sizes, and the edge cases of ids and fields lists."""
    rng = random.Random(2024)
    for _ in range(120):
        member = f"m{rng.randint(1, 100_000)}"
        title = f"t{rng.randint(1, 2_500)}"
        ids = ",".join(f"t{rng.randint(0, 2_600)}" for _ in range(rng.randint(1, 200)))
        rows = {"rows": str(rng.randint(1, 50)), "per_row": str(rng.randint(1, 100))}
        position = json.dumps({"position_s": rng.randint(0, 600)}).encode()
        yield "subscriber", "GET", ("members", member), {}, b""
        yield "recommendations", "GET", ("rows", member), rows, b""
        yield "ratings", "GET", ("match", member), {"ids": ids}, b""
        yield "catalog", "GET", ("titles",), {"ids": ids, "fields": rng.choice(FIELD_LISTS)}, b""
        yield "catalog", "GET", ("titles",), {"ids": ids}, b""
        yield "catalog", "GET", ("titles", title), {"fields": rng.choice(FIELD_LISTS)}, b""
        yield "catalog", "GET", ("titles", title), {}, b""
        yield "bookmarks", "PUT", (member, title), {}, position
        yield "recommendations", "GET", ("rows", member), {"rows": "3", "per_row": "4"}, b""
        yield "history", "GET", (member,), {"limit": str(rng.randint(1, 200))}, b""
    yield "catalog", "GET", ("titles",), {"ids": " t1, ,t2,t1,\tt3\u00a0", "fields": "title"}, b""
    yield "catalog", "GET", ("titles",), {"ids": "t1,,t2,t1,t0,t3"}, b""
    yield "catalog", "GET", ("titles",), {"ids": "t1", "fields": "id"}, b""
    yield "catalog", "GET", ("titles",), {"ids": "t1", "fields": ""}, b""
    yield "ratings", "GET", ("match", "m1"), {"ids": "t1,t1, t2 ,,t0,t9999"}, b""


def digest(services: Services) -> str:
    """SHA-256 over every answer's status and body, in order."""
    hashed = hashlib.sha256()
    for service, method, segments, query, body in requests():
        response = services.handle(service, Request(method, segments, query, body))
        hashed.update(f"{service} {response.status} {len(response.body)}\n".encode())
        hashed.update(response.body)
    return hashed.hexdigest()


def test_answers_are_byte_for_byte_the_recorded_ones():
    """The same requests get the same bytes as before the fast paths."""
    assert digest(Services(World(7), Store(7, clock=lambda: NOW))) == GOLDEN_SHA256
