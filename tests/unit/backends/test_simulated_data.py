"""The seeded world: deterministic, realistic shapes, cheap lookups."""

from __future__ import annotations

import re

import pytest

from backends.simulated import World
from backends.simulated.catalogue import TITLE_FIELDS
from backends.simulated.reference import (
    COUNTRIES,
    DEVICES,
    GENERIC_DEVICE,
    GENRES,
    MATURITY_LEVELS,
    PLANS_BY_ID,
)


@pytest.fixture(scope="module")
def world() -> World:
    return World(7)


@pytest.fixture(scope="module")
def twin() -> World:
    return World(7)


def test_same_seed_builds_the_same_world(world, twin):
    """Two worlds of one seed agree on titles, members, rows, scores and search."""
    for title_id in ("t1", "t777", "t2500"):
        assert world.catalogue.fragment(title_id) == twin.catalogue.fragment(title_id)
    for member_id in ("m1", "m4242", "m100000"):
        ours, theirs = world.members.get(member_id), twin.members.get(member_id)
        assert ours == theirs
        assert ours is not None
        assert world.rows.rows(ours, ours.history, 20, 10) == twin.rows.rows(
            ours, ours.history, 20, 10
        )
        assert world.match_score(ours, "t10") == twin.match_score(ours, "t10")
    assert world.search.search("dark river").hits == twin.search.search("dark river").hits


def test_another_seed_builds_another_world(world):
    """A different seed changes the catalogue and the members."""
    other = World(8)
    assert other.catalogue.fragment("t1") != world.catalogue.fragment("t1")
    assert other.members.get("m1") != world.members.get("m1")


def test_catalogue_has_2500_complete_titles(world):
    """Ids t1..t2500, every field present and plausible."""
    catalogue = world.catalogue
    assert len(catalogue) == 2500
    assert catalogue.ids[0] == "t1"
    assert catalogue.ids[-1] == "t2500"
    assert catalogue.get("t2501") is None
    names = set()
    for title_id in catalogue.ids:
        title = catalogue.get(title_id)
        assert title is not None
        wire = title.to_json()
        assert tuple(wire) == TITLE_FIELDS
        assert 1950 <= title.year <= 2026
        assert 1 <= len(title.genres) <= 3
        assert set(title.genres) <= set(GENRES)
        assert title.maturity_rating in MATURITY_LEVELS
        assert title.kind in {"movie", "series"}
        assert (title.seasons is None) == (title.kind == "movie")
        assert title.duration_s > 0
        assert 0 < title.popularity <= 100
        assert title.synopsis.endswith(".")
        for art in (title.boxart, title.hero, title.logo):
            assert art.startswith("https://img.example.invalid/")
        names.add(title.name)
    assert len(names) == 2500


def test_popularity_and_genre_indexes_are_sorted(world):
    """Per-genre lists hold only that genre, most popular first."""
    catalogue = world.catalogue
    assert len(catalogue.by_popularity) == 2500
    for genre, ids in catalogue.by_genre.items():
        titles = [catalogue.get(tid) for tid in ids]
        assert all(t is not None and genre in t.genres for t in titles)
        popularity = [t.popularity for t in titles if t is not None]
        assert popularity == sorted(popularity, reverse=True)


@pytest.mark.parametrize("member_id", ["m1", "m99", "m100000"])
def test_generated_members_exist_with_full_records(world, member_id):
    """Any m1..m100000 is a complete member."""
    member = world.members.get(member_id)
    assert member is not None
    record = member.to_json()
    assert record["member_id"] == member_id
    assert record["country"] in COUNTRIES
    assert record["language"] in COUNTRIES[record["country"]].languages
    assert record["plan_id"] in PLANS_BY_ID
    assert 0 <= record["maturity_level"] <= 4
    assert 1 <= len(record["profiles"]) <= 5
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["member_since"])
    assert all(set(p) == {"id", "name", "kids"} for p in record["profiles"])


@pytest.mark.parametrize("member_id", ["m0", "m100001", "m01", "m-1", "x1", "", "m", "m1x"])
def test_ids_outside_the_generated_range_are_unknown(world, member_id):
    """Only canonical m1..m100000 ids are generated members."""
    assert world.members.get(member_id) is None


def test_seeded_history_is_newest_first_and_within_durations(world):
    """History entries are plausible: unique titles, newest first, positions within the title."""
    member = world.members.get("m7")
    assert member is not None
    watched = [entry.watched_at for entry in member.history]
    assert watched == sorted(watched, reverse=True)
    assert len({entry.title_id for entry in member.history}) == len(member.history)
    assert all(0 < e.position_s <= e.duration_s for e in member.history)


def test_different_members_get_different_rows(world):
    """Row plans depend on the member."""
    first, second = world.members.get("m1"), world.members.get("m2")
    assert first is not None
    assert second is not None
    rows_one = world.rows.rows(first, (), 10, 20)
    rows_two = world.rows.rows(second, (), 10, 20)
    assert [r["video_ids"] for r in rows_one] != [r["video_ids"] for r in rows_two]


def test_rows_respect_sizes_and_kinds(world):
    """Up to 50 rows of up to per_row catalogue ids, unique row ids, known kinds."""
    member = world.members.get("m3")
    assert member is not None
    rows = world.rows.rows(member, member.history, 50, 100)
    assert len(rows) == 50
    assert len({row["id"] for row in rows}) == 50
    kinds = {row["kind"] for row in rows}
    assert {"top_10", "trending", "genre", "because_you_watched"} <= kinds
    assert kinds <= {"continue_watching", "top_10", "trending", "genre", "because_you_watched"}
    for row in rows:
        assert len(row["video_ids"]) <= 100
        assert len(set(row["video_ids"])) == len(row["video_ids"])
        assert all(world.catalogue.get(tid) is not None for tid in row["video_ids"])
        if row["kind"] == "top_10":
            assert len(row["video_ids"]) == 10
    assert len(world.rows.rows(member, member.history, 3, 2)[0]["video_ids"]) <= 2


def test_continue_watching_comes_from_unfinished_history(world):
    """The first row lists started-but-unfinished titles, when there are any."""
    member = next(
        m
        for n in range(1, 200)
        if (m := world.members.get(f"m{n}")) is not None
        and any(e.position_s < e.duration_s for e in m.history)
    )
    first = world.rows.rows(member, member.history, 1, 100)[0]
    assert first["kind"] == "continue_watching"
    unfinished = {e.title_id for e in member.history if e.position_s < e.duration_s * 0.95}
    assert set(first["video_ids"]) <= unfinished


def test_match_scores_are_percentages(world):
    """Scores lie in 50..99, stable per member and title; unknown titles have none."""
    member = world.members.get("m5")
    assert member is not None
    scores = [world.match_score(member, f"t{n}") for n in range(1, 501)]
    assert all(s is not None and 50 <= s <= 99 for s in scores)
    assert len(set(scores)) > 10
    assert world.match_score(member, "t0") is None


def test_about_85_percent_of_emails_may_trial(world):
    """Eligibility is a stable hash with an ~85% pass rate."""
    eligible = sum(world.trial_eligible(f"user{n}@example.com") for n in range(4000))
    assert 0.80 < eligible / 4000 < 0.90
    assert world.trial_eligible("A@B.com") == world.trial_eligible("a@b.com")


def test_plans_are_priced_per_country(world):
    """Every market has three plans in its own currency; unknown markets none."""
    offer = world.plans("JP")
    assert offer is not None
    assert offer["currency"] == "JPY"
    assert [p["id"] for p in offer["plans"]] == ["basic", "standard", "premium"]
    assert all(p["currency"] == "JPY" and p["price"] > 0 for p in offer["plans"])
    assert world.plans("ZZ") is None
    assert world.price("US", "premium") == (2499, "USD")


def test_unknown_devices_get_the_generic_profile(world):
    """Known types have their own profile; anything else is conservative."""
    assert world.device("tv-samsung-2024") is DEVICES["tv-samsung-2024"]
    assert world.device("toaster") is GENERIC_DEVICE
    assert GENERIC_DEVICE.max_resolution == "720p"


def test_search_ranks_title_words_above_genres(world):
    """A title's own words outrank genre matches; ordering is stable; prefixes match."""
    title = world.catalogue.get("t1")
    assert title is not None
    hits = world.search.search(title.name).hits
    assert "t1" in [tid for tid, _ in hits[:20]]
    assert hits == world.search.search(title.name.upper()).hits
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    comedy = world.search.search("comedy").hits
    assert len(comedy) == len(world.catalogue.by_genre["Comedy"])
    assert world.search.search("comed").hits
    assert world.search.search("the of").hits == ()


def test_key_ids_are_stable_uuids(world):
    """Two content keys per title, the same every time."""
    keys = world.key_ids("t3")
    assert keys == world.key_ids("t3")
    assert len(set(keys)) == 2
    assert all(re.fullmatch(r"[0-9a-f-]{36}", key) for key in keys)
