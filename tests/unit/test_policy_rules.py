"""Visibility, roles, slugs and spec validation: table-driven."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyterhub_spaces.policy import (
    Role,
    allowed,
    is_safe_slug,
    server_name,
    one_active_conflict,
    org_can_see,
    over_space_limit,
    slugify,
    space_id_of,
    validate_profile,
    validate_role,
    validate_spec,
    visible_orgs,
)
from jupyterhub_spaces.settings import DEFAULT_PROFILES

GRANTS = {("northwind", "fabrikam")}


@pytest.mark.parametrize(
    "viewer, other, expected",
    [
        ("northwind", "northwind", True),
        ("northwind", "fabrikam", True),
        ("fabrikam", "northwind", False),  # not symmetric
        ("northwind", "contoso", False),
        ("contoso", "northwind", False),
    ],
)
def test_org_visibility(viewer, other, expected):
    assert org_can_see(viewer, other, GRANTS) is expected


def test_visible_orgs():
    assert visible_orgs("northwind", GRANTS) == {"northwind", "fabrikam"}
    assert visible_orgs("contoso", GRANTS) == {"contoso"}


@pytest.mark.parametrize(
    "action, roles",
    [
        ("read", {"owner", "editor", "viewer", "publisher"}),
        ("edit", {"owner", "editor"}),
        ("manage_collaborators", {"owner"}),
        ("delete", {"owner"}),
        ("write_collaborative", {"owner", "editor"}),
        ("write_publish", {"owner", "publisher"}),
        ("publish", {"owner", "publisher"}),
    ],
)
def test_role_permissions(action, roles):
    assert {r.value for r in Role if allowed(r, action)} == roles
    assert not allowed(None, action)


def test_unknown_action_is_an_error():
    with pytest.raises(KeyError):
        allowed(Role.owner, "fly")


@pytest.mark.parametrize(
    "name, taken, slug",
    [
        ("Retail forecasting", (), "retail-forecasting"),
        ("  Q3 -- Sales!! ", (), "q3-sales"),
        ("2026 plan", (), "plan"),
        ("Ünïcödé Späce", (), "unicode-space"),
        ("???", (), "space"),
        ("Retail", {"retail"}, "retail-2"),
        ("Retail", {"retail", "retail-2"}, "retail-3"),
        ("x" * 40, (), "x" * 30),
        ("x" * 40, {"x" * 30}, "x" * 28 + "-2"),
    ],
)
def test_slugify(name, taken, slug):
    assert slugify(name, taken) == slug


@pytest.mark.parametrize(
    "value, ok",
    [("a", True), ("a-b-1", True), ("1a", False), ("a--b", False), ("a-", False),
     ("A", False), ("", False), ("a" * 30, True), ("a" * 31, False), ("a_b", False), ("a\n", False)],
)
def test_is_safe_slug(value, ok):
    assert is_safe_slug(value) is ok


@given(st.text(max_size=60), st.sets(st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True), max_size=5))
def test_slugify_is_always_safe_and_free(name, taken):
    slug = slugify(name, taken)
    assert is_safe_slug(slug)
    assert slug not in taken


@given(st.integers(min_value=1, max_value=2**31 - 1))
def test_a_server_name_is_a_safe_slug_that_gives_its_id_back(space_id):
    name = server_name(space_id)
    assert is_safe_slug(name)
    assert space_id_of(name) == space_id


@pytest.mark.parametrize(
    "name",
    ["", "space", "space-", "space-0", "space-01", "space--1", "space-1-", "space-+1",
     "space-1a", "Space-1", " space-1", "space-1 ", "space-\u0661", "space-12345678901",
     "retail-forecasting", "space-1\n"],
)
def test_other_names_are_no_space_server(name):
    """One spelling per id: a slug, a padded or signed id, digits of another script,
    or any name around one is no space's server."""
    assert space_id_of(name) is None


@pytest.mark.parametrize("bad", [0, -1, True, 1.0, "1"])
def test_server_name_wants_a_space_id(bad):
    with pytest.raises(ValueError):
        server_name(bad)


@pytest.mark.parametrize(
    "profile, workers, fields",
    [
        ("small", 0, set()),
        ("small", 2, set()),
        ("small", 3, {"workers"}),
        ("small", -1, {"workers"}),
        ("small", True, {"workers"}),
        ("small", "1", {"workers"}),
        ("huge", 1, {"profile"}),
    ],
)
def test_validate_profile(profile, workers, fields):
    assert set(validate_profile(profile, workers, DEFAULT_PROFILES)) == fields


@pytest.mark.parametrize(
    "name, tools, fields",
    [
        ("Sales", ["jupyterlab"], set()),
        ("Sales", ["jupyterlab", "superset", "sqllab", "rstudio"], set()),
        ("", ["jupyterlab"], {"display_name"}),
        ("   ", ["jupyterlab"], {"display_name"}),
        ("x" * 81, ["jupyterlab"], {"display_name"}),
        ("Sales", [], {"tools"}),
        ("Sales", ["excel"], {"tools"}),
    ],
)
def test_validate_spec(name, tools, fields):
    assert set(validate_spec(name, tools, "small", 1, DEFAULT_PROFILES)) == fields


def test_validate_role():
    assert validate_role("editor") is None
    assert "choose one of owner, editor, viewer, publisher" in validate_role("boss")


def test_space_limit():
    assert over_space_limit(14, 15) is None
    assert "the most allowed is 15" in over_space_limit(15, 15)


def test_one_active():
    assert one_active_conflict("b", []) is None
    assert one_active_conflict("b", ["b"]) is None
    assert "'a' is already active" in one_active_conflict("b", ["a"])
