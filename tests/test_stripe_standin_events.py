"""`GET /v1/events` and `GET /v1/events/{id}` on the stand-in, through the real stripe SDK.

Reconciliation lists the events Stripe sent and applies the ones the
webhook missed, so the stand-in must page and filter them the way Stripe
does: newest first, `limit`, `starting_after` / `ending_before`, `has_more`,
`type` with `*` wildcards or `types`, `created` ranges, a 30-day window,
and the same injected failures as every other endpoint.
"""

from __future__ import annotations

import pytest
import stripe

from devtools.stripe_standin import DEFAULT_API_VERSION

KEY = "sk_test_" + "eventsSuite0123456789"
LIVE_KEY = "sk_live_" + "eventsSuite0123456789"
DAY = 24 * 60 * 60


def client_for(server, key=KEY, retries=0):
    return stripe.StripeClient(
        key,
        base_addresses={"api": server.base_url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=5),
    )


def new_session(server, key=KEY) -> str:
    params = {
        "mode": "payment",
        "ui_mode": "embedded_page",
        "return_url": "http://127.0.0.1:5173/return?session_id={CHECKOUT_SESSION_ID}",
        "line_items": [
            {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 200, "product_data": {"name": "Board"}}}
        ],
    }
    return client_for(server, key).v1.checkout.sessions.create(params=params).id


def expired_sessions(server, count: int) -> list:
    """`count` checkout.session.expired events, oldest first."""
    return [server.expire(new_session(server))[0] for _ in range(count)]


def ids(items) -> list:
    return [item["id"] if isinstance(item, dict) else item.id for item in items]


# -- the list and its pages ---------------------------------------------------


def test_events_are_listed_newest_first_in_a_stripe_list(standin):
    events = expired_sessions(standin, 3)

    page = client_for(standin).v1.events.list()

    assert page.object == "list"
    assert page.url == "/v1/events"
    assert page.has_more is False
    assert ids(page.data) == ids(reversed(events))


def test_listed_events_have_the_shape_of_delivered_ones(standin):
    [event] = expired_sessions(standin, 1)

    [listed] = client_for(standin).v1.events.list().data

    assert listed.to_dict() == event
    assert listed.api_version == DEFAULT_API_VERSION
    assert listed.data.object.object == "checkout.session"


def test_a_page_holds_ten_events_unless_a_limit_is_given(standin):
    expired_sessions(standin, 12)
    client = client_for(standin)

    default = client.v1.events.list()
    three = client.v1.events.list(params={"limit": 3})

    assert (len(default.data), default.has_more) == (10, True)
    assert (len(three.data), three.has_more) == (3, True)


@pytest.mark.parametrize("limit", [0, 101])
def test_a_limit_outside_1_to_100_is_refused(standin, limit):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client_for(standin).v1.events.list(params={"limit": limit})

    assert refused.value.param == "limit"


def test_starting_after_gives_the_next_older_page(standin):
    events = expired_sessions(standin, 5)
    client = client_for(standin)
    first = client.v1.events.list(params={"limit": 2})

    second = client.v1.events.list(params={"limit": 2, "starting_after": first.data[-1].id})

    assert ids(second.data) == ids([events[2], events[1]])
    assert second.has_more is True


def test_ending_before_gives_the_next_newer_page(standin):
    events = expired_sessions(standin, 5)

    page = client_for(standin).v1.events.list(params={"limit": 2, "ending_before": events[1]["id"]})

    assert ids(page.data) == ids([events[3], events[2]])
    assert page.has_more is True


def test_auto_pagination_walks_every_page_newest_first(standin):
    events = expired_sessions(standin, 7)

    walked = client_for(standin).v1.events.list(params={"limit": 3}).auto_paging_iter()

    assert ids(walked) == ids(reversed(events))
    assert [r.params.get("starting_after") for r in standin.requests if r.path == "/v1/events"] == [
        None,
        events[4]["id"],
        events[1]["id"],
    ]


def test_auto_pagination_from_ending_before_walks_towards_the_newest(standin):
    events = expired_sessions(standin, 6)

    walked = (
        client_for(standin).v1.events.list(params={"limit": 2, "ending_before": events[0]["id"]}).auto_paging_iter()
    )

    assert ids(walked) == ids(events[1:])


def test_an_unknown_cursor_is_refused_as_resource_missing(standin):
    expired_sessions(standin, 1)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client_for(standin).v1.events.list(params={"starting_after": "evt_unknown"})

    assert (refused.value.http_status, refused.value.code) == (400, "resource_missing")
    assert refused.value.param == "starting_after"


def test_both_cursors_at_once_are_refused(standin):
    first, second = expired_sessions(standin, 2)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        client_for(standin).v1.events.list(params={"starting_after": second["id"], "ending_before": first["id"]})

    assert refused.value.code == "parameters_exclusive"


def test_an_unknown_list_parameter_is_refused(standin):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client_for(standin).v1.events.list(params={"kind": "checkout.session.completed"})

    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "kind")


# -- filters ------------------------------------------------------------------


def paid_and_expired(server):
    """One checkout.session.completed, one checkout.session.expired, then a refund's two events."""
    paid = new_session(server)
    server.complete(paid)
    server.expire(new_session(server))
    server.refund_payment(paid)


def listed_types(server, **params) -> list:
    return [event.type for event in client_for(server).v1.events.list(params=params).auto_paging_iter()]


def test_type_keeps_events_of_that_type(standin):
    paid_and_expired(standin)

    assert listed_types(standin, type="checkout.session.expired") == ["checkout.session.expired"]


def test_a_wildcard_type_keeps_a_group_of_events(standin):
    paid_and_expired(standin)

    assert listed_types(standin, type="checkout.session.*") == [
        "checkout.session.expired",
        "checkout.session.completed",
    ]
    assert listed_types(standin, type="*.refunded") == ["charge.refunded"]


def test_types_keeps_events_of_any_listed_type(standin):
    paid_and_expired(standin)

    kept = listed_types(standin, types=["checkout.session.completed", "charge.refunded"])

    assert kept == ["charge.refunded", "checkout.session.completed"]


def test_more_than_20_types_are_refused(standin):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        listed_types(standin, types=[f"checkout.session.kind{n}" for n in range(21)])

    assert refused.value.param == "types"


def test_type_and_types_together_are_refused(standin):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        listed_types(standin, type="checkout.session.*", types=["charge.refunded"])

    assert refused.value.param == "types"


def events_an_hour_apart(server, count: int) -> list:
    events = []
    for _ in range(count):
        events.extend(expired_sessions(server, 1))
        server.advance_time(3600)
    return events


@pytest.mark.parametrize(
    "bound, kept",
    [
        ("gt", [2]),
        ("gte", [1, 2]),
        ("lt", [0]),
        ("lte", [0, 1]),
    ],
)
def test_created_bounds_keep_events_in_the_window(standin, bound, kept):
    events = events_an_hour_apart(standin, 3)

    page = client_for(standin).v1.events.list(params={"created": {bound: events[1]["created"]}})

    assert ids(page.data) == ids(reversed([events[index] for index in kept]))


def test_created_bounds_combine(standin):
    events = events_an_hour_apart(standin, 4)

    page = client_for(standin).v1.events.list(
        params={"created": {"gt": events[0]["created"], "lt": events[3]["created"]}}
    )

    assert ids(page.data) == ids([events[2], events[1]])


def test_an_exact_created_keeps_events_of_that_second(standin):
    events = events_an_hour_apart(standin, 3)

    page = client_for(standin).v1.events.list(params={"created": events[1]["created"]})

    assert ids(page.data) == [events[1]["id"]]


def test_filters_and_cursors_page_together(standin):
    paid_and_expired(standin)
    paid_and_expired(standin)
    client = client_for(standin)

    walked = client.v1.events.list(params={"type": "checkout.session.*", "limit": 1}).auto_paging_iter()

    assert [event.type for event in walked] == ["checkout.session.expired", "checkout.session.completed"] * 2


def test_no_event_counts_as_delivered(standin):
    expired_sessions(standin, 2)
    client = client_for(standin)

    delivered = client.v1.events.list(params={"delivery_success": True})
    pending = client.v1.events.list(params={"delivery_success": False})

    assert delivered.data == []
    assert len(pending.data) == 2


def test_events_older_than_30_days_are_gone(standin):
    [old] = expired_sessions(standin, 1)
    standin.advance_time(30 * DAY + 1)
    [recent] = expired_sessions(standin, 1)
    client = client_for(standin)

    listed = client.v1.events.list()

    assert ids(listed.data) == [recent["id"]]
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v1.events.retrieve(old["id"])
    assert gone.value.http_status == 404


def test_a_key_lists_only_events_of_its_own_mode(standin):
    [test_event] = expired_sessions(standin, 1)
    live_session = new_session(standin, key=LIVE_KEY)
    [live_event] = standin.expire(live_session)

    assert ids(client_for(standin).v1.events.list().data) == [test_event["id"]]
    assert ids(client_for(standin, key=LIVE_KEY).v1.events.list().data) == [live_event["id"]]


# -- retrieve -----------------------------------------------------------------


def test_retrieve_returns_the_event_as_delivered(standin):
    [event] = expired_sessions(standin, 1)

    retrieved = client_for(standin).v1.events.retrieve(event["id"])

    assert retrieved.to_dict() == event


def test_retrieving_an_unknown_event_is_404_resource_missing(standin):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client_for(standin).v1.events.retrieve("evt_" + "x" * 24)

    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


# -- faults -------------------------------------------------------------------


def test_an_injected_429_reaches_a_list_call_as_a_rate_limit_error(standin):
    standin.fail_next(1, status=429)

    with pytest.raises(stripe.RateLimitError) as limited:
        client_for(standin, retries=2).v1.events.list()

    assert limited.value.headers["Retry-After"] == "1"
    assert standin.request_count == 1


def test_an_injected_500_on_a_list_call_is_retried_by_the_sdk(standin):
    expired_sessions(standin, 1)
    standin.fail_next(1, status=500)

    page = client_for(standin, retries=1).v1.events.list()

    assert len(page.data) == 1
    assert [r.path for r in standin.requests][-2:] == ["/v1/events", "/v1/events"]


def test_a_fault_mid_pagination_surfaces_and_the_walk_can_resume(standin):
    events = expired_sessions(standin, 4)
    client = client_for(standin)
    first = client.v1.events.list(params={"limit": 2})
    standin.fail_next(1, status=503)

    with pytest.raises(stripe.APIError):
        first.next_page()
    rest = first.next_page()

    assert ids(first.data) + ids(rest.data) == ids(reversed(events))


# -- the clock ----------------------------------------------------------------


def test_advancing_the_clock_dates_new_events_later(standin):
    [before] = expired_sessions(standin, 1)

    standin.advance_time(2 * DAY)
    [after] = expired_sessions(standin, 1)

    assert after["created"] - before["created"] >= 2 * DAY
    assert after["data"]["object"]["created"] == after["created"]


def test_events_made_with_the_clock_moved_back_list_by_their_created(standin):
    [now] = expired_sessions(standin, 1)
    standin.advance_time(-DAY)
    [yesterday] = expired_sessions(standin, 1)

    assert ids(client_for(standin).v1.events.list().data) == [now["id"], yesterday["id"]]
