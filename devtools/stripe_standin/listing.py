"""Stripe's list semantics, shared by every list endpoint.

A list answers ``{"object": "list", "data": [...], "has_more": ..., "url": ...}``
with the newest objects first. ``limit`` (1 to 100, default 10) sizes a page;
``starting_after`` pages towards older objects and ``ending_before``
towards newer ones, each naming an object on the previous page (the SDK's
auto-pagination does exactly that). Filters narrow the list without moving
the cursor: a cursor is a position in the whole list, as on Stripe.

Also here: the ``created`` filter (``gt``/``gte``/``lt``/``lte`` or one exact
second) and the event ``type`` / ``types`` filters, with ``*`` wildcards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from devtools.stripe_standin.errors import StripeError, _no_such

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_EVENT_TYPES = 20

Predicate = Callable[[dict[str, Any]], bool]


def newest_first(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects by ``created``, newest first; among equals, the later-made first.

    ``objects`` come in the order they were made. Sorting (rather than
    reversing) keeps the order right when the clock was moved back.
    """
    indexed = list(enumerate(objects))
    indexed.sort(key=lambda pair: (pair[1]["created"], pair[0]), reverse=True)
    return [obj for _, obj in indexed]


def page(
    ordered: list[dict[str, Any]],
    keep: Predicate,
    params: dict[str, Any],
    url: str,
    kind: str,
    render: Callable[[dict[str, Any]], dict[str, Any]] = lambda obj: obj,
) -> dict[str, Any]:
    """One page of ``ordered`` (newest first) as Stripe pages it.

    ``kind`` names the objects in "No such …" errors for unknown cursors.
    """
    limit = params.get("limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise StripeError(400, f"limit must be between 1 and {MAX_LIMIT}", param="limit")
    after, before = params.get("starting_after"), params.get("ending_before")
    if after is not None and before is not None:
        raise StripeError(
            400,
            "You may only specify one of these parameters: ending_before, starting_after.",
            code="parameters_exclusive",
            param="ending_before",
        )
    if after is not None:
        window = [obj for obj in ordered[_position(ordered, after, "starting_after", kind) + 1 :] if keep(obj)]
        data = window[:limit]
    elif before is not None:
        window = [obj for obj in ordered[: _position(ordered, before, "ending_before", kind)] if keep(obj)]
        data = window[-limit:]
    else:
        window = [obj for obj in ordered if keep(obj)]
        data = window[:limit]
    return {
        "object": "list",
        "data": [render(obj) for obj in data],
        "has_more": len(window) > limit,
        "url": url,
    }


def _position(ordered: list[dict[str, Any]], object_id: str, param: str, kind: str) -> int:
    for index, obj in enumerate(ordered):
        if obj["id"] == object_id:
            return index
    raise _no_such(kind, object_id, param)


def created_filter(created: Any) -> Callable[[int], bool] | None:
    """A test on a ``created`` timestamp, from the parameter's checked value."""
    if created is None:
        return None
    if isinstance(created, int):
        return lambda value: value == created
    bounds: list[tuple[Callable[[int, int], bool], int]] = []
    for name, compare in (
        ("gt", lambda value, bound: value > bound),
        ("gte", lambda value, bound: value >= bound),
        ("lt", lambda value, bound: value < bound),
        ("lte", lambda value, bound: value <= bound),
    ):
        if name in created:
            bounds.append((compare, created[name]))
    return lambda value: all(compare(value, bound) for compare, bound in bounds)


def event_type_filter(params: dict[str, Any]) -> Callable[[str], bool] | None:
    """A test on an event's ``type``, from ``type`` (may hold ``*``) or ``types``."""
    pattern, names = params.get("type"), params.get("types")
    if pattern is not None and names is not None:
        raise StripeError(
            400,
            "You may pass either `type` or `types`, but not both.",
            code="parameters_exclusive",
            param="types",
        )
    if names is not None:
        if len(names) > MAX_EVENT_TYPES:
            raise StripeError(
                400,
                f"Invalid array: types can contain at most {MAX_EVENT_TYPES} event names, but you passed {len(names)}.",
                param="types",
            )
        wanted = frozenset(names)
        return lambda event_type: event_type in wanted
    if pattern is not None:
        # `*` stands for any run of characters, as in "checkout.session.*".
        regex = re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")
        return lambda event_type: regex.match(event_type) is not None
    return None
