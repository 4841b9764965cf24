"""The money after a Checkout Session on the stand-in: PaymentIntents, Charges, refunds, disputes.

The payment record follows refunds and chargebacks from Stripe's events
(`refund.created`, `charge.refunded`, `charge.dispute.*`), which name a
payment intent rather than a session. These tests pin the objects the
stand-in makes when a session is paid, the events each simulation returns
(and lists), their shapes, and the refusals Stripe would answer with.
"""

from __future__ import annotations

import json

import pytest
import requests
import stripe

from devtools.stripe_standin import DEFAULT_API_VERSION
from tests.support.standin import sdk_client

KEY = "sk_test_" + "paymentsSuite0123456789"
LIVE_KEY = "sk_live_" + "paymentsSuite0123456789"
OLD_VERSION = "2025-09-30.clover"


def client_for(server, key=KEY, version=None):
    return sdk_client(server, key, version)


def new_session(server, amount=200, key=KEY, version=None) -> str:
    params = {
        "mode": "payment",
        "ui_mode": "embedded" if version else "embedded_page",
        "return_url": "http://127.0.0.1:5173/return?session_id={CHECKOUT_SESSION_ID}",
        "line_items": [
            {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": amount, "product_data": {"name": "Board"}}}
        ],
    }
    return client_for(server, key, version).v1.checkout.sessions.create(params=params).id


def paid_session(server, **options) -> str:
    session_id = new_session(server, **options)
    server.complete(session_id)
    return session_id


def charge_of(server, session_id) -> dict:
    return server.payment(session_id)["charge"]


# -- the payment a completed session makes ------------------------------------


def test_a_paid_session_has_a_succeeded_payment_intent(standin):
    session_id = paid_session(standin)
    intent_id = standin.session(session_id)["payment_intent"]

    intent = client_for(standin).v1.payment_intents.retrieve(intent_id)

    assert intent.id.startswith("pi_")
    assert (intent.object, intent.status) == ("payment_intent", "succeeded")
    assert (intent.amount, intent.amount_received, intent.currency) == (200, 200, "usd")
    assert intent.latest_charge.startswith("ch_")


def test_a_paid_session_has_a_succeeded_charge_for_its_total(standin):
    session_id = paid_session(standin)
    intent = standin.payment_intent(standin.session(session_id)["payment_intent"])

    charge = client_for(standin).v1.charges.retrieve(intent["latest_charge"])

    assert (charge.object, charge.status, charge.paid) == ("charge", "succeeded", True)
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (200, 0, False)
    assert charge.payment_intent == intent["id"]
    assert (charge.currency, charge.livemode, charge.disputed) == ("usd", False, False)
    assert charge.billing_details.email == "jenny@example.com"


def test_completion_sends_only_the_sessions_event(standin):
    paid_session(standin)

    assert [event["type"] for event in standin.events] == ["checkout.session.completed"]


def test_a_delayed_payment_is_processing_until_it_succeeds(standin):
    session_id = new_session(standin)
    standin.complete(session_id, payment_status="unpaid")
    before = standin.payment(session_id)

    standin.async_payment(session_id, succeeded=True)
    after = standin.payment(session_id)

    assert (before["payment_intent"]["status"], before["charge"]["status"]) == ("processing", "pending")
    assert (after["payment_intent"]["status"], after["charge"]["status"]) == ("succeeded", "succeeded")
    assert after["charge"]["paid"] is True


def test_a_failed_delayed_payment_fails_its_charge(standin):
    session_id = new_session(standin)
    standin.complete(session_id, payment_status="unpaid")

    standin.async_payment(session_id, succeeded=False)
    payment = standin.payment(session_id)

    assert payment["payment_intent"]["status"] == "requires_payment_method"
    assert payment["payment_intent"]["last_payment_error"]["code"] == "insufficient_funds"
    assert (payment["charge"]["status"], payment["charge"]["paid"]) == ("failed", False)


def test_a_session_with_nothing_to_pay_has_no_payment(standin):
    session_id = new_session(standin, amount=0)

    standin.complete(session_id, payment_status="no_payment_required")

    assert standin.session(session_id)["payment_intent"] is None
    with pytest.raises(ValueError):
        standin.payment(session_id)


def test_a_payment_is_found_by_any_of_its_ids(standin):
    session_id = paid_session(standin)
    payment = standin.payment(session_id)

    assert standin.payment(payment["payment_intent"]["id"]) == payment
    assert standin.payment(payment["charge"]["id"]) == payment
    assert payment["session"] == session_id


def test_payment_objects_are_invisible_to_a_key_of_the_other_mode(standin):
    charge = charge_of(standin, paid_session(standin))

    with pytest.raises(stripe.InvalidRequestError) as missing:
        client_for(standin, key=LIVE_KEY).v1.charges.retrieve(charge["id"])

    assert missing.value.http_status == 404


@pytest.mark.parametrize(
    "resource, object_id, param",
    [
        ("payment_intents", "pi_unknown", "intent"),
        ("charges", "ch_unknown", "charge"),
        ("refunds", "re_unknown", "refund"),
        ("disputes", "dp_unknown", "dispute"),
    ],
)
def test_retrieving_an_unknown_object_is_404_resource_missing(standin, resource, object_id, param):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        getattr(client_for(standin).v1, resource).retrieve(object_id)

    assert (missing.value.http_status, missing.value.code, missing.value.param) == (404, "resource_missing", param)


def test_an_object_is_not_retrieved_as_another_kind(standin):
    charge = charge_of(standin, paid_session(standin))

    with pytest.raises(stripe.InvalidRequestError) as missing:
        client_for(standin).v1.payment_intents.retrieve(charge["id"])

    assert missing.value.http_status == 404


# -- refunds ------------------------------------------------------------------


def test_a_full_refund_emits_refund_created_then_charge_refunded(standin):
    session_id = paid_session(standin)
    charge = charge_of(standin, session_id)

    created, refunded = standin.refund_payment(session_id)

    assert (created["type"], refunded["type"]) == ("refund.created", "charge.refunded")
    refund = created["data"]["object"]
    assert refund["id"].startswith("re_")
    assert (refund["object"], refund["status"], refund["amount"]) == ("refund", "succeeded", 200)
    assert (refund["charge"], refund["payment_intent"]) == (charge["id"], charge["payment_intent"])
    assert refund["currency"] == "usd"


def test_charge_refunded_carries_the_charge_and_what_changed(standin):
    session_id = paid_session(standin)

    _, event = standin.refund_payment(session_id)

    charge = event["data"]["object"]
    assert charge["object"] == "charge"
    assert (charge["amount"], charge["amount_refunded"], charge["refunded"]) == (200, 200, True)
    assert charge["payment_intent"] == standin.session(session_id)["payment_intent"]
    assert (charge["currency"], charge["livemode"]) == ("usd", False)
    assert event["data"]["previous_attributes"] == {"amount_refunded": 0, "refunded": False}


def test_refund_events_are_events_like_the_sessions(standin):
    created, refunded = standin.refund_payment(paid_session(standin))

    for event in (created, refunded):
        assert event["id"].startswith("evt_")
        assert (event["object"], event["api_version"]) == ("event", DEFAULT_API_VERSION)
        assert (event["livemode"], event["pending_webhooks"]) == (False, 1)
        assert event["request"] == {"id": None, "idempotency_key": None}
        assert isinstance(event["created"], int)


def test_payment_events_pass_the_sdks_webhook_verification_as_typed_objects(standin):
    session_id = paid_session(standin)
    events = standin.refund_payment(session_id) + standin.open_dispute(paid_session(standin))
    secret = "whsec_" + "paymentsSuiteSecret0123"

    parsed = []
    for event in events:
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(payload, secret)
        parsed.append(client_for(standin).construct_event(payload, header, secret))

    assert [type(event.data.object) for event in parsed] == [stripe.Refund, stripe.Charge, stripe.Dispute]


def test_a_partial_refund_leaves_the_charge_not_refunded(standin):
    session_id = paid_session(standin)

    _, event = standin.refund_payment(session_id, 50)

    charge = event["data"]["object"]
    assert (charge["amount_refunded"], charge["refunded"]) == (50, False)
    assert event["data"]["previous_attributes"] == {"amount_refunded": 0}


def test_a_second_refund_takes_what_remains(standin):
    session_id = paid_session(standin)
    standin.refund_payment(session_id, 50)

    created, refunded = standin.refund_payment(session_id)

    assert created["data"]["object"]["amount"] == 150
    assert (refunded["data"]["object"]["amount_refunded"], refunded["data"]["object"]["refunded"]) == (200, True)
    assert len(standin.payment(session_id)["refunds"]) == 2


def test_refunding_more_than_remains_is_refused_and_changes_nothing(standin):
    session_id = paid_session(standin)
    standin.refund_payment(session_id, 150)
    events_before = len(standin.events)

    with pytest.raises(ValueError, match=r"Refund amount \(\$0\.60\) is greater than unrefunded amount"):
        standin.refund_payment(session_id, 60)

    assert charge_of(standin, session_id)["amount_refunded"] == 150
    assert len(standin.events) == events_before


def test_a_fully_refunded_charge_cannot_be_refunded_again(standin):
    session_id = paid_session(standin)
    standin.refund_payment(session_id)

    with pytest.raises(ValueError, match="has already been refunded"):
        standin.refund_payment(session_id)


@pytest.mark.parametrize("amount", [0, -5])
def test_a_refund_must_be_a_positive_amount(standin, amount):
    with pytest.raises(ValueError):
        standin.refund_payment(paid_session(standin), amount)


def test_a_refund_reason_must_be_one_of_stripes(standin):
    session_id = paid_session(standin)

    [created, _] = standin.refund_payment(session_id, 10, reason="requested_by_customer")

    assert created["data"]["object"]["reason"] == "requested_by_customer"
    with pytest.raises(ValueError):
        standin.refund_payment(session_id, 10, reason="changed_mind")


def test_a_payment_is_refunded_by_its_payment_intent_id(standin):
    session_id = paid_session(standin)
    intent_id = standin.session(session_id)["payment_intent"]

    standin.refund_payment(intent_id, 75)

    assert charge_of(standin, session_id)["amount_refunded"] == 75


def test_a_payment_still_processing_cannot_be_refunded(standin):
    session_id = new_session(standin)
    standin.complete(session_id, payment_status="unpaid")

    with pytest.raises(ValueError, match="pending"):
        standin.refund_payment(session_id)


def test_an_open_session_has_no_payment_to_refund(standin):
    with pytest.raises(ValueError, match="no payment"):
        standin.refund_payment(new_session(standin))


def test_an_unknown_id_has_no_payment(standin):
    with pytest.raises(KeyError):
        standin.refund_payment("pi_unknown")


def test_the_refund_and_the_charge_read_back_through_the_sdk(standin):
    session_id = paid_session(standin)
    created, _ = standin.refund_payment(session_id, 80)
    client = client_for(standin)

    refund = client.v1.refunds.retrieve(created["data"]["object"]["id"])
    charge = client.v1.charges.retrieve(refund.charge)

    assert (refund.amount, refund.status) == (80, "succeeded")
    assert (charge.amount_refunded, charge.refunded) == (80, False)


def test_refund_events_are_listed_with_the_others(standin):
    session_id = paid_session(standin)
    created, refunded = standin.refund_payment(session_id)

    page = client_for(standin).v1.events.list(params={"types": ["refund.created", "charge.refunded"]})

    assert [event.id for event in page.data] == [refunded["id"], created["id"]]


def test_payment_events_speak_the_api_version_the_session_was_created_with(standin):
    session_id = paid_session(standin, version=OLD_VERSION)

    events = standin.refund_payment(session_id) + standin.open_dispute(session_id)

    assert {event["api_version"] for event in events} == {OLD_VERSION}


# -- disputes -----------------------------------------------------------------


def test_opening_a_dispute_emits_charge_dispute_created(standin):
    session_id = paid_session(standin)
    charge = charge_of(standin, session_id)

    [event] = standin.open_dispute(session_id)

    dispute = event["data"]["object"]
    assert event["type"] == "charge.dispute.created"
    assert dispute["id"].startswith("dp_")
    assert (dispute["object"], dispute["status"], dispute["reason"]) == ("dispute", "needs_response", "fraudulent")
    assert (dispute["charge"], dispute["payment_intent"]) == (charge["id"], charge["payment_intent"])
    assert (dispute["amount"], dispute["currency"]) == (200, "usd")
    assert dispute["created"] == event["created"]
    assert charge_of(standin, session_id)["disputed"] is True


def test_a_dispute_can_name_its_reason_and_amount(standin):
    [event] = standin.open_dispute(paid_session(standin), reason="product_not_received", amount=120)

    assert (event["data"]["object"]["reason"], event["data"]["object"]["amount"]) == ("product_not_received", 120)


def test_updating_a_dispute_puts_it_under_review(standin):
    session_id = paid_session(standin)
    standin.open_dispute(session_id)

    [event] = standin.update_dispute(session_id)

    assert event["type"] == "charge.dispute.updated"
    assert event["data"]["object"]["status"] == "under_review"
    assert event["data"]["object"]["evidence_details"]["has_evidence"] is True
    assert event["data"]["previous_attributes"]["status"] == "needs_response"


@pytest.mark.parametrize("won, status", [(True, "won"), (False, "lost")])
def test_closing_a_dispute_emits_charge_dispute_closed(standin, won, status):
    session_id = paid_session(standin)
    [created] = standin.open_dispute(session_id)
    standin.update_dispute(session_id)

    [event] = standin.close_dispute(created["data"]["object"]["id"], won=won)

    assert event["type"] == "charge.dispute.closed"
    assert event["data"]["object"]["status"] == status
    assert event["data"]["previous_attributes"]["status"] == "under_review"


def test_a_closed_dispute_cannot_change_again(standin):
    session_id = paid_session(standin)
    standin.open_dispute(session_id)
    standin.close_dispute(session_id, won=False)

    with pytest.raises(ValueError, match="already closed"):
        standin.close_dispute(session_id, won=True)
    with pytest.raises(ValueError, match="already closed"):
        standin.update_dispute(session_id)


def test_a_charge_has_at_most_one_dispute(standin):
    session_id = paid_session(standin)
    standin.open_dispute(session_id)

    with pytest.raises(ValueError, match="already has a dispute"):
        standin.open_dispute(session_id)


def test_a_payment_without_a_dispute_cannot_close_one(standin):
    with pytest.raises(ValueError, match="no dispute"):
        standin.close_dispute(paid_session(standin), won=True)


@pytest.mark.parametrize("outcome", [None, False])
def test_a_charged_back_payment_cannot_be_refunded(standin, outcome):
    session_id = paid_session(standin)
    standin.open_dispute(session_id)
    if outcome is not None:
        standin.close_dispute(session_id, won=outcome)

    with pytest.raises(ValueError, match="charged back"):
        standin.refund_payment(session_id)


def test_a_dispute_reads_back_through_the_sdk(standin):
    session_id = paid_session(standin)
    [event] = standin.open_dispute(session_id)
    standin.close_dispute(session_id, won=True)

    dispute = client_for(standin).v1.disputes.retrieve(event["data"]["object"]["id"])

    assert (dispute.status, dispute.charge) == ("won", charge_of(standin, session_id)["id"])


# -- over HTTP, for other processes -------------------------------------------


def admin(server, path, payload=None, method="POST"):
    response = requests.request(method, f"{server.base_url}/_standin/{path}", json=payload, timeout=5)
    return response.status_code, response.json()


def test_admin_refund_returns_the_payment_and_its_events(standin):
    session_id = paid_session(standin)

    status, body = admin(standin, f"payments/{session_id}/refund", {"amount": 30, "reason": "duplicate"})

    assert status == 200
    assert [event["type"] for event in body["events"]] == ["refund.created", "charge.refunded"]
    assert body["payment"]["charge"]["amount_refunded"] == 30
    assert body["payment"]["refunds"][0]["reason"] == "duplicate"


def test_admin_refund_takes_a_plain_form_too(standin):
    session_id = paid_session(standin)
    intent_id = standin.session(session_id)["payment_intent"]

    response = requests.post(
        f"{standin.base_url}/_standin/payments/{intent_id}/refund", data={"amount": "25"}, timeout=5
    )

    assert response.json()["payment"]["charge"]["amount_refunded"] == 25


def test_admin_refund_beyond_what_remains_is_400(standin):
    status, body = admin(standin, f"payments/{paid_session(standin)}/refund", {"amount": 500})

    assert status == 400
    assert "greater than unrefunded amount" in body["error"]["message"]


def test_admin_dispute_update_and_close(standin):
    session_id = paid_session(standin)

    opened = admin(standin, f"payments/{session_id}/dispute", {"reason": "general"})[1]
    updated = admin(standin, f"payments/{session_id}/update_dispute", {"status": "under_review"})[1]
    closed = admin(standin, f"payments/{session_id}/close_dispute", {"won": False})[1]

    assert [e["type"] for e in opened["events"] + updated["events"] + closed["events"]] == [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
    ]
    assert closed["payment"]["dispute"]["status"] == "lost"


def test_admin_close_dispute_needs_won(standin):
    session_id = paid_session(standin)
    admin(standin, f"payments/{session_id}/dispute")

    status, _ = admin(standin, f"payments/{session_id}/close_dispute", {})

    assert status == 400


def test_admin_payment_lookup_and_unknown_payment(standin):
    session_id = paid_session(standin)

    found = admin(standin, f"payments/{session_id}", method="GET")
    missing = admin(standin, "payments/pi_unknown", method="GET")

    assert found[0] == 200 and found[1]["session"] == session_id
    assert missing[0] == 404


def test_admin_clock_moves_stripes_time(standin):
    before = standin.now

    status, body = admin(standin, "clock", {"advance": 3600})

    assert status == 200
    assert body["now"] - before >= 3600
    assert 0 <= standin.now - body["now"] <= 1


def test_a_retrieved_session_can_expand_its_payment_intent(standin):
    session_id = new_session(standin)
    standin.complete(session_id, payment_status="unpaid")
    standin.async_payment(session_id, succeeded=False)

    session = client_for(standin).v1.checkout.sessions.retrieve(session_id, params={"expand": ["payment_intent"]})

    assert session.payment_intent.object == "payment_intent"
    assert session.payment_intent.status == "requires_payment_method"
