"""The fields grammar: parsing to a canonical tree, printing, projection, and 400 problems."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.frontend.problems import Problem
from orchestrator.frontend.protocol.fields import (
    MAX_DEPTH,
    MAX_LENGTH,
    Selection,
    parse_fields,
    project,
)
from orchestrator.schema import Field, body, integer, obj, objects, text, texts

SCHEMA = body(
    objects(
        "rows",
        "Rows.",
        text("id"),
        text("title"),
        objects("videos", "Cards.", text("id"), text("title"), integer("match", nullable=True)),
    ),
    obj("member", "Who.", text("name"), text("country")),
    texts("tags"),
)

ALL = Selection.ALL


def _sel(**names: Selection) -> Selection:
    return Selection.of(names, every=False)


def _problem(text: str, schema=SCHEMA, **limits) -> Problem:
    with pytest.raises(Problem) as caught:
        parse_fields(text, schema, **limits)
    problem = caught.value
    assert problem.code == "invalid_fields"
    assert problem.status == 400
    assert problem.extras["parameter"] == "fields"
    return problem


def test_names_and_nested_selections_parse_to_a_tree():
    """rows(title,videos(id)) selects each row's title and each video's id."""
    parsed = parse_fields("rows(title,videos(id)),member", SCHEMA)
    assert parsed == _sel(rows=_sel(title=ALL, videos=_sel(id=ALL)), member=ALL)


def test_slash_is_shorthand_for_a_nested_selection():
    """a/b/c means a(b(c)), and can mix with parentheses."""
    assert parse_fields("rows/videos/id", SCHEMA) == parse_fields("rows(videos(id))", SCHEMA)
    assert parse_fields("rows/videos(id,title)", SCHEMA) == parse_fields(
        "rows(videos(id,title))", SCHEMA
    )


def test_repeated_names_merge_and_order_does_not_matter():
    """rows(id),rows(title) is rows(id,title); a bare name absorbs any narrower selection."""
    assert parse_fields("rows(id),rows(title)") == parse_fields("rows(title,id)")
    assert parse_fields("rows(id),rows") == parse_fields("rows")
    assert parse_fields("member,rows") == parse_fields("rows,member")


def test_star_selects_every_field_and_a_sibling_narrows_one():
    """* is everything; rows(*,videos(id)) keeps every row field but only the videos' ids."""
    assert parse_fields("*", SCHEMA).is_all
    assert parse_fields("rows(*)", SCHEMA) == _sel(rows=ALL)
    narrowed = parse_fields("rows(*,videos(id))", SCHEMA)
    row = narrowed.child("rows")
    assert row is not None
    assert row.child("title") is ALL
    assert row.child("videos") == _sel(id=ALL)
    assert parse_fields("rows(*,title)", SCHEMA) == _sel(rows=ALL)


def test_spaces_around_names_and_punctuation_are_ignored():
    """Devices may write 'rows( id , title )'."""
    assert parse_fields(" rows( id , title ) ", SCHEMA) == parse_fields("rows(id,title)", SCHEMA)


def test_printing_is_canonical_and_parses_back():
    """The printer sorts names and writes bare names for whole fields."""
    parsed = parse_fields("rows(videos(title,id),title),member", SCHEMA)
    assert str(parsed) == "member,rows(title,videos(id,title))"
    assert parse_fields(str(parsed), SCHEMA) == parsed
    assert str(parse_fields("rows(*,videos(id))")) == "rows(*,videos(id))"


def test_wants_answers_for_a_path_inside_or_around_the_selection():
    """A path is wanted if it is selected, lies inside a whole selected field, or holds one."""
    parsed = parse_fields("rows(videos(id)),member", SCHEMA)
    assert parsed.wants(("rows",))
    assert parsed.wants(("rows", "videos", "id"))
    assert not parsed.wants(("rows", "videos", "match"))
    assert not parsed.wants(("rows", "title"))
    assert parsed.wants(("member", "name"))
    assert not parsed.wants(("tags",))


def test_projection_keeps_only_selected_keys_in_objects_and_list_items():
    """Lists are projected item by item; absent keys and nulls pass through quietly."""
    page = {
        "rows": [
            {"id": "r1", "title": "T", "videos": [{"id": "t1", "title": "A", "match": 9}]},
            {"id": "r2", "title": "U", "videos": []},
        ],
        "member": None,
        "tags": ["x"],
    }
    projected = project(page, parse_fields("rows(videos(id,match)),member", SCHEMA))
    assert projected == {
        "rows": [{"videos": [{"id": "t1", "match": 9}]}, {"videos": []}],
        "member": None,
    }
    assert project(page, ALL) is page


@pytest.mark.parametrize(
    ("text", "position", "allowed"),
    [
        ("nope", 1, ["rows", "member", "tags"]),
        ("rows(title,colour)", 12, ["id", "title", "videos"]),
        ("rows/videos(id,score)", 16, ["id", "title", "match"]),
    ],
)
def test_an_unknown_field_names_its_position_and_the_valid_ones(text, position, allowed):
    """The problem says where the bad name starts and what that level offers."""
    problem = _problem(text)
    assert problem.extras["position"] == position
    assert problem.extras["allowed"] == allowed
    assert "unknown field" in problem.detail


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 1, "empty selection"),
        ("rows(", 6, "expected a field name"),
        ("rows(id", 8, "expected ')' to close '(' at character 5"),
        ("rows)", 5, "unbalanced ')'"),
        ("rows,", 6, "expected a field name"),
        ("rows id", 6, "expected ','"),
        ("rows(id)(title)", 9, "expected ','"),
        ("9rows", 1, "expected a field name"),
        ("rows(*(id))", 7, "'*' takes no nested selection"),
        ("member(name(x))", 12, "'member.name' has no fields"),
        ("tags/x", 5, "'tags' has no fields"),
        ("rows(é)", 6, "expected a field name"),
    ],
)
def test_bad_syntax_names_the_character_where_it_went_wrong(text, position, reason):
    """Each syntax error points at the first character that cannot be read."""
    problem = _problem(text)
    assert problem.extras["position"] == position
    assert reason in problem.detail
    assert f"character {position}" in problem.detail


def test_too_deep_and_too_long_are_problems_of_their_own():
    """Nesting past MAX_DEPTH and text past MAX_LENGTH are refused before any more work."""
    deep = "a(" * MAX_DEPTH + "b" + ")" * MAX_DEPTH
    assert "deeper than" in _problem(deep, schema=None).detail
    assert parse_fields("a(" * (MAX_DEPTH - 1) + "b" + ")" * (MAX_DEPTH - 1)) is not None
    long = _problem("a," * MAX_LENGTH, schema=None)
    assert long.extras["position"] == MAX_LENGTH + 1
    assert "longer than" in long.detail


# -- properties ----------------------------------------------------------------------------

_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)


def _trees(depth: int) -> st.SearchStrategy[Selection]:
    """Random canonical selections at most ``depth`` levels deep."""
    if depth == 1:
        children: st.SearchStrategy[Selection] = st.just(ALL)
    else:
        children = st.one_of(st.just(ALL), _trees(depth - 1))
    return st.builds(
        lambda names, every: Selection.of(names, every=every),
        st.dictionaries(_NAMES, children, min_size=1, max_size=4),
        st.booleans(),
    )


@given(_trees(4))
def test_any_printed_tree_parses_back_to_the_same_tree(tree: Selection):
    """print then parse is the identity on canonical trees."""
    assert parse_fields(str(tree)) == tree


@given(_trees(3))
def test_projecting_by_a_reparsed_tree_is_the_same_projection(tree: Selection):
    """A tree and its printed-and-parsed copy select exactly the same parts of a body."""
    sample = {name: {"x": 1, name: [1, {"y": 2}]} for name, _ in tree.names}
    assert project(sample, parse_fields(str(tree))) == project(sample, tree)


def _outcome(text: str, schema: Field | None) -> Selection | Problem:
    try:
        return parse_fields(text, schema)
    except Problem as problem:
        return problem


@given(st.text(alphabet=st.sampled_from("rowsidtlevmb*(),/ _9é\t\n"), max_size=40))
def test_garbage_yields_a_selection_or_an_invalid_fields_problem(text: str):
    """Whatever the text, the parser answers with a tree or a 400 problem, never else."""
    for schema in (None, SCHEMA):
        outcome = _outcome(text, schema)
        if isinstance(outcome, Problem):
            assert outcome.code == "invalid_fields"
            assert outcome.status == 400
            assert 1 <= outcome.extras["position"] <= len(text) + 1


@given(st.text(max_size=80))
def test_arbitrary_unicode_never_escapes_as_another_exception(text: str):
    """Any string at all, including control characters and surrogates, is handled."""
    outcome = _outcome(text, SCHEMA)
    assert isinstance(outcome, Selection) or outcome.code == "invalid_fields"
