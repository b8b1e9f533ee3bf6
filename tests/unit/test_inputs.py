"""What the API accepts as input (jupyterhub_spaces.service.inputs): every string field
refuses invisible and control text, every integer is range-checked, JSON bodies are
bounded, and errors stay short whatever the body."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyterhub_spaces.service.inputs import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_INT,
    MAX_LISTED,
    Field,
    InputError,
    check_fields,
    parse_id,
    parse_int,
    parse_json_object,
    text_problem,
)


@pytest.mark.parametrize(
    "value, problem",
    [
        ("Q3 forecast", None),
        ("Café ☕ 東京", None),
        ("a\u0000b", "control character U+0000"),
        ("a\u0007b", "control character U+0007"),
        ("line\nbreak", "control character U+000A"),
        ("a\u0085b", "control character U+0085"),  # C1 control
        ("\ufeff", "no visible character"),  # a byte order mark alone
        ("\u200b\u200c\u200d", "no visible character"),  # zero-width only
        ("\u2060\ufeff ", "no visible character"),
        ("   ", "no visible character"),
        ("\u00a0\u3000", "no visible character"),  # other spaces
        ("\u0301", "no visible character"),  # a combining mark alone
        ("", "no visible character"),
        ("a\ud800", "lone surrogate"),
        ("x" * 201, "at most 200 characters"),
    ],
)
def test_text_rule(value, problem):
    got = text_problem(value)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


def test_multiline_and_empty_are_opt_in():
    assert text_problem("two\nlines\ttab", multiline=True) is None
    assert "U+0000" in text_problem("a\u0000b", multiline=True)
    assert text_problem("", allow_empty=True) is None
    assert "no visible" in text_problem(" ", allow_empty=True)


@pytest.mark.parametrize(
    "raw, status, phrase",
    [
        (b"", 400, "needs a JSON object"),
        (b"[1]", 400, "must be a JSON object"),
        (b"{nope", 400, "not valid JSON"),
        (b'{"a": NaN}', 400, "not valid JSON"),
        (b'{"a": Infinity}', 400, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested deeper"),
        (b'{"a": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}", 400, "nested deeper"),
        (b'{"a": "\\ud800"}', 400, "lone surrogate"),
        (b'{"\\udfff": 1}', 400, "lone surrogate"),
        (b'{"a": ["ok", {"b": "\\udc00"}]}', 400, "lone surrogate"),
        (b"\xff\xfe{}", 400, "not valid JSON"),
        (b'{"a": "' + b"x" * MAX_BODY_BYTES + b'"}', 413, "larger than"),
    ],
)
def test_bad_bodies(raw, status, phrase):
    with pytest.raises(InputError) as e:
        parse_json_object(raw)
    assert e.value.status == status and phrase in e.value.message


def test_a_good_body():
    assert parse_json_object('{"a": [1, {"b": "ü"}]}'.encode()) == {"a": [1, {"b": "ü"}]}


FIELDS = {
    "name": Field(str, required=True),
    "note": Field(str, multiline=True, allow_empty=True, max_length=2000),
    "count": Field(int),
    "ids": Field(list, item=int, minimum=1),
    "tags": Field(list, item=str),
}


@pytest.mark.parametrize(
    "body, field, phrase",
    [
        ({"name": "a\u0000b"}, "name", "U+0000"),
        ({"name": "\ufeff"}, "name", "no visible"),
        ({"name": "ok", "tags": ["fine", "\u200b"]}, "tags", "no visible"),
        ({"name": "ok", "count": 2**64}, "count", "whole number from"),
        ({"name": "ok", "count": -(2**63)}, "count", "whole number from"),
        ({"name": "ok", "ids": [1, 2**64]}, "ids", "from 1 to"),
        ({"name": "ok", "ids": [0]}, "ids", "from 1 to"),
        ({"name": "ok", "ids": list(range(1, 200))}, "ids", "at most 100 items"),
        ({"name": "ok", "count": True}, "count", "whole number"),
        ({"name": 5}, "name", "must be a string"),
        ({}, "name", "required"),
    ],
)
def test_field_problems(body, field, phrase):
    with pytest.raises(InputError) as e:
        check_fields(body, FIELDS)
    assert e.value.status == 422
    assert phrase in e.value.fields[field], e.value.fields


def test_fifty_thousand_unknown_keys_get_a_short_answer():
    body = {f"key{i:05d}": i for i in range(50_000)}
    with pytest.raises(InputError) as e:
        check_fields(body, FIELDS)
    answer = json.dumps({"message": e.value.message, "fields": e.value.fields})
    assert len(answer) < 5_000
    assert len(e.value.fields) == MAX_LISTED
    assert f"and {50_000 - MAX_LISTED + 1} more" in e.value.message  # + the missing name


def test_a_huge_unknown_key_is_cut_in_the_answer():
    with pytest.raises(InputError) as e:
        check_fields({"name": "ok", "k" * 100_000: 1}, FIELDS)
    assert len(e.value.message) < 2_000 and all(len(k) < 100 for k in e.value.fields)


@pytest.mark.parametrize(
    "raw, expected",
    [("1", 1), ("2147483647", MAX_INT), ("2147483648", None), (str(2**64), None), ("0", None),
     ("-1", None), ("1.0", None), ("1e3", None), ("+1", None), (" 1", None), ("1_0", None),
     ("\uff11", None), ("\u0661", None), ("", None), ("9" * 5000, None)],
)
def test_path_ids(raw, expected):
    assert parse_id(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [("0", 0), ("500", 500), ("1.25e32", None), ("125000000000000000000000000000000", None),
     ("-1", None), ("501", None), ("nan", None)],
)
def test_query_integers(raw, expected):
    assert parse_int(raw, 0, 500) == expected


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
))
def test_any_json_value_is_accepted_or_refused_never_crashes(value):
    raw = json.dumps({"name": value, "count": value, "ids": value, "tags": value}).encode()
    try:
        check_fields(parse_json_object(raw), FIELDS)
    except InputError as e:
        assert e.status in (400, 413, 422)
