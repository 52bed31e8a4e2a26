"""The simulated services' caches and fast paths give exactly what the plain computation
gives, and stay bounded."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from backends.simulated import World
from backends.simulated.catalogue import TITLE_FIELDS
from backends.simulated.exchange import Request, encode
from backends.simulated.members import stable_int, stable_prefix
from backends.simulated.projections import Projections
from backends.simulated.rows import RowSpec

FIELD_LISTS = (
    ("title", "year", "genres", "maturity_rating", "boxart"),
    ("title", "year", "boxart"),
    ("title",),
    (),
    TITLE_FIELDS[1:],
)


@pytest.fixture(scope="module")
def world() -> World:
    return World(7)


@pytest.mark.parametrize("fields", FIELD_LISTS)
def test_every_encoded_title_is_the_encoded_projection(world, fields):
    """Cached or not, a title's bytes are those of encoding its projection."""
    projections = Projections(world.catalogue)
    for title_id in world.catalogue.ids:
        expected = encode(world.catalogue.project(title_id, fields))
        assert projections.title(title_id, fields) == expected
        assert projections.title(title_id, fields) == expected  # now from the cache


def test_the_full_title_is_its_start_up_fragment(world):
    """No field list means every field, as serialised at start-up."""
    projections = Projections(world.catalogue)
    for title_id in ("t1", "t42", "t2500"):
        assert projections.title(title_id, None) == encode(world.catalogue.get(title_id).to_json())


@pytest.mark.parametrize("fields", [*FIELD_LISTS, None])
def test_a_batch_is_the_encoded_list_in_order_without_unknown_ids(world, fields):
    """The spliced body equals encoding {"titles": [...]} of the known ids, in order."""
    projections = Projections(world.catalogue)
    rng = random.Random(5)
    for _ in range(20):
        ids = [f"t{rng.randint(0, 2_600)}" for _ in range(rng.randint(0, 60))]
        known = [tid for tid in ids if world.catalogue.get(tid) is not None]
        titles = [
            world.catalogue.get(tid).to_json()
            if fields is None
            else world.catalogue.project(tid, fields)
            for tid in known
        ]
        assert projections.batch(ids, fields) == encode({"titles": titles})


def test_projections_keep_a_bounded_number_of_field_lists(world):
    """Past its capacity the least recently used field list is dropped, and rebuilt alike."""
    projections = Projections(world.catalogue, field_lists=3)
    lists = [(name,) for name in TITLE_FIELDS[1:6]]
    for fields in lists:
        projections.batch(["t1", "t2"], fields)
    assert len(projections) == 3
    first = lists[0]
    assert projections.batch(["t1"], first) == encode(
        {"titles": [world.catalogue.project("t1", first)]}
    )
    assert len(projections) == 3


def reference_video_ids(source: tuple[str, ...], offset: int, exclude: str | None, count: int):
    """The rows' slicing as it was: build the pool without the excluded id, then slice."""
    pool = [tid for tid in source if tid != exclude] if exclude else source
    if not pool:
        return []
    count = min(count, len(pool))
    start = offset % len(pool)
    picked = list(pool[start : start + count])
    picked.extend(pool[: count - len(picked)])
    return picked


def test_row_slicing_never_builds_the_pool_yet_agrees_with_building_it():
    """Every source size, skipped index, offset and count up to small bounds."""
    for size in range(7):
        source = tuple(f"t{i}" for i in range(size))
        for skip, offset, count in itertools.product(range(-1, size), range(15), range(10)):
            spec = RowSpec("r", "k", "R", source, offset, skip)
            exclude = source[skip] if skip >= 0 else None
            expected = reference_video_ids(source, offset, exclude, count)
            assert spec.video_ids(count) == expected, (size, skip, offset, count)


def test_rows_shared_between_members_are_shared_not_copied(world):
    """Because-you-watched rows depend on the title only, genre rows on genre and offset:
    members get the same objects, and there is at most one per title, or genre and offset."""
    members = [world.members.get(f"m{n}") for n in range(1, 400)]
    plans = [world.rows._plan(member) for member in members]
    by_id: dict[tuple[str, int], RowSpec] = {}
    for spec in itertools.chain.from_iterable(plans):
        if spec.kind in {"because_you_watched", "genre"}:
            assert by_id.setdefault((spec.row_id, spec.offset), spec) is spec
    assert len(world.rows._because_rows) <= len(world.catalogue)
    assert len(world.rows._genre_rows) <= sum(
        max(1, len(ids) // 5) for ids in world.catalogue.by_genre.values()
    )


def test_batch_scores_equal_one_score_at_a_time(world):
    """match_scores is match_score for each known id, with the original hash and bonus."""
    rng = random.Random(3)
    for number in range(1, 60):
        member = world.members.get(f"m{number * 1_667}")
        ids = [f"t{rng.randint(0, 2_600)}" for _ in range(80)]
        scores = world.match_scores(member, ids)
        assert list(scores) == [tid for tid in dict.fromkeys(ids) if world.catalogue.get(tid)]
        for title_id, score in scores.items():
            title = world.catalogue.get(title_id)
            expected = 50 + stable_int(7, "match", member.member_id, title_id) % 40
            if set(title.genres) & set(member.favourite_genres):
                expected += 10
            assert score == min(expected, 99) == world.match_score(member, title_id)


def test_a_copied_prefix_hashes_as_stable_int():
    """Hashing the prefix once changes nothing."""
    prefix = stable_prefix(7, "match", "m42")
    for last in ("t1", "t2500", "", "é", "a:b"):
        state = prefix.copy()
        state.update(last.encode())
        assert int.from_bytes(state.digest(), "big") == stable_int(7, "match", "m42", last)


def reference_list(raw: str, limit: int) -> list[str]:
    """Request.list_param as it was, without the fast path."""
    items = list(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
    assert len(items) <= limit
    return items


def test_list_param_fast_path_agrees_with_stripping():
    """Lists with and without blanks, empties and duplicates parse as before."""
    rng = random.Random(11)
    alphabet = ["t1", "t2", "t10", "", " ", "\t", "\u00a0", "\u2003", ",", "x y"]
    for _ in range(3_000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        if not raw.strip():
            continue
        request = Request("GET", (), {"ids": raw})
        assert request.list_param("ids", 500) == reference_list(raw, 500), repr(raw)


def test_the_fast_path_sees_whitespace_as_strip_does():
    """The fast path is taken only without whitespace, in str.strip's sense of it."""
    space = re.compile(r"\s")
    for code in range(0x3100):
        char = chr(code)
        assert bool(space.fullmatch(char)) == (char.strip() == ""), hex(code)
