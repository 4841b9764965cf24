"""`common.http`'s building blocks, on their own: reading JSON from a client, and answering JSON whatever happens."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.errors import InvalidRequest
from common.http import json_response, parse_json

LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Text as a client may send it in JSON escapes: any code point, lone surrogates included.
CHARACTERS = st.integers(0, 7).flatmap(lambda n: st.characters(categories=["Cs"]) if n == 0 else st.characters())
ANY_TEXT = st.text(CHARACTERS, max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=15,
)


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *strings_in(item)]]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


@given(st.binary(max_size=200))
def test_any_bytes_are_a_value_or_an_invalid_request(raw):
    try:
        value = parse_json(raw)
    except InvalidRequest as refused:
        assert len(str(refused)) < 100
    else:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # every string in it can be encoded


@given(JSON_VALUES)
def test_json_is_read_back_unless_it_holds_a_lone_surrogate(value):
    raw = json.dumps(value).encode("ascii")  # escaped, as a browser's JSON.stringify may send it

    if any(LONE_SURROGATE.search(s) for s in strings_in(value)):
        with pytest.raises(InvalidRequest, match="not valid Unicode"):
            parse_json(raw)
    else:
        assert parse_json(raw) == value


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b"[" * 900 + b"]" * 900])
def test_nesting_is_refused_or_read_without_recursion_errors(raw):
    try:
        parse_json(raw)
    except InvalidRequest as refused:
        assert "nested too deeply" in str(refused)


@given(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3), st.integers(100, 599))
def test_an_answer_is_json_whatever_text_it_carries(body, status):
    response = json_response(body, status)

    assert response.status_code == status
    assert json.loads(response.body) is not None
    assert response.headers["content-type"] == "application/json"


def test_a_whole_number_written_as_a_float_is_the_integer():
    """JSON Schema reads 2.0 as the integer 2; so does the service, so a Stripe time or amount so written is read."""
    assert parse_json(b'{"created": 1767225600.0, "amount": 2e2, "rate": 8.25}') == {
        "created": 1767225600,
        "amount": 200,
        "rate": 8.25,
    }
    assert type(parse_json(b"2.0")) is int


def test_a_number_too_large_for_a_float_is_not_json():
    with pytest.raises(InvalidRequest, match="not JSON"):
        parse_json(b'{"amount_total": 1e400}')
