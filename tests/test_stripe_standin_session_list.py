"""`GET /v1/checkout/sessions` on the stand-in: Stripe's paging and the filters reconciliation uses.

A reconciliation job lists the sessions completed in a window
(`status=complete`, `created[gte]=…`) and checks each has a record, and
finds a refund's or dispute's session by its `payment_intent`.
"""

from __future__ import annotations

import pytest
import stripe

from tests.support.standin import sdk_client

KEY = "sk_test_" + "sessionListSuite012345"
LIVE_KEY = "sk_live_" + "sessionListSuite012345"
OLD_VERSION = "2025-09-30.clover"
HOUR = 60 * 60


def client_for(server, key=KEY, version=None):
    return sdk_client(server, key, version)


def new_session(server, key=KEY, version=None, **extra) -> str:
    params = {
        "mode": "payment",
        "ui_mode": "embedded" if version else "embedded_page",
        "return_url": "http://127.0.0.1:5173/return?session_id={CHECKOUT_SESSION_ID}",
        "line_items": [
            {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 200, "product_data": {"name": "Board"}}}
        ],
        **extra,
    }
    return client_for(server, key, version).v1.checkout.sessions.create(params=params).id


def listed(server, **params) -> list:
    return [s.id for s in client_for(server).v1.checkout.sessions.list(params=params).auto_paging_iter()]


def test_completed_sessions_in_a_window_are_found_with_status_and_created(standin):
    before = new_session(standin)
    standin.complete(before)
    standin.advance_time(2 * HOUR)
    window_start = standin.now
    inside = [new_session(standin) for _ in range(3)]
    for session_id in inside[:2]:
        standin.complete(session_id)

    found = listed(standin, status="complete", created={"gte": window_start})

    assert found == [inside[1], inside[0]]


def test_created_lt_keeps_sessions_made_before_it(standin):
    early = new_session(standin)
    standin.advance_time(HOUR)
    late = new_session(standin)

    assert listed(standin, created={"lt": standin.session(late)["created"]}) == [early]


def test_sessions_page_with_starting_after_and_has_more(standin):
    made = [new_session(standin) for _ in range(5)]
    client = client_for(standin)

    first = client.v1.checkout.sessions.list(params={"limit": 2})
    second = client.v1.checkout.sessions.list(params={"limit": 2, "starting_after": first.data[-1].id})

    assert [s.id for s in first.data] == [made[4], made[3]]
    assert [s.id for s in second.data] == [made[2], made[1]]
    assert (first.has_more, second.has_more) == (True, True)
    assert first.url == "/v1/checkout/sessions"


def test_auto_pagination_walks_every_session(standin):
    made = [new_session(standin) for _ in range(5)]

    assert listed(standin, limit=2) == list(reversed(made))


def test_ending_before_pages_towards_newer_sessions(standin):
    made = [new_session(standin) for _ in range(4)]

    page = client_for(standin).v1.checkout.sessions.list(params={"limit": 2, "ending_before": made[0]})

    assert [s.id for s in page.data] == [made[2], made[1]]
    assert page.has_more is True


def test_payment_intent_finds_the_session_of_a_payment(standin):
    paid, other = new_session(standin), new_session(standin)
    standin.complete(paid)
    standin.complete(other)

    found = listed(standin, payment_intent=standin.session(paid)["payment_intent"])

    assert found == [paid]


def test_customer_details_email_finds_sessions_paid_with_it(standin):
    sam, jenny = new_session(standin), new_session(standin)
    standin.complete(sam, customer_email="sam@example.com")
    standin.complete(jenny)

    assert listed(standin, customer_details={"email": "sam@example.com"}) == [sam]


def test_an_unknown_status_is_refused(standin):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        listed(standin, status="paid")

    assert refused.value.param == "status"


def test_an_unknown_cursor_is_refused(standin):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        listed(standin, starting_after="cs_test_unknown")

    assert (refused.value.code, refused.value.param) == ("resource_missing", "starting_after")


def test_a_key_lists_only_sessions_of_its_own_mode(standin):
    test_session = new_session(standin)
    new_session(standin, key=LIVE_KEY)

    assert listed(standin) == [test_session]


def test_listed_sessions_name_ui_mode_in_the_requests_api_version(standin):
    new_session(standin, version=OLD_VERSION)

    [listed_session] = client_for(standin).v1.checkout.sessions.list().data

    assert listed_session.ui_mode == "embedded_page"
