"""`common.stripe_api`: calls to Stripe through the real SDK and the stand-in, and what each failure becomes."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from checkout.create import session_params
from common import errors, stripe_api
from common.stripe_api import StripeApi
from common.stripe_http import PooledAsyncClient
from tests.conftest import TEST_KEY

SESSION = session_params("https://herome.example/hero-me?session_id={CHECKOUT_SESSION_ID}")


def call(standin, method: str, *args, key: str = TEST_KEY):
    """One call of a fresh StripeApi against the stand-in, on an event loop of its own."""

    async def run():
        api = StripeApi(key, standin.base_url)
        try:
            return await getattr(api, method)(*args)
        finally:
            await api.close()

    return asyncio.run(run())


def failure(standin, method: str, *args) -> Exception:
    with pytest.raises(Exception) as raised:
        call(standin, method, *args)
    return raised.value


def test_a_session_is_created_with_the_idempotency_key_given(standin):
    session = call(standin, "create_checkout_session", SESSION, "key-1")

    assert session["object"] == "checkout.session"
    [request] = standin.requests
    assert request.headers.get("Idempotency-Key") == "key-1"


def test_a_session_is_retrieved_with_its_payment_intent_expanded(standin):
    created = call(standin, "create_checkout_session", SESSION)
    standin.complete(created["id"])

    session = call(standin, "retrieve_checkout_session", created["id"])

    assert session["id"] == created["id"]
    assert session["payment_intent"]["object"] == "payment_intent"


def test_a_list_is_one_page_of_stripes_objects(standin):
    created = call(standin, "create_checkout_session", SESSION)

    page = call(standin, "list", "/v1/checkout/sessions", {"limit": 1})

    assert [session["id"] for session in page["data"]] == [created["id"]]
    assert page["has_more"] is False


def test_calls_carry_the_api_version_we_pin_not_the_sdks_own(standin, monkeypatch):
    monkeypatch.setattr(stripe_api, "API_VERSION", "2026-02-25.clover")

    call(standin, "list", "/v1/checkout/sessions", {"limit": 1})

    [request] = standin.requests
    assert request.headers["Stripe-Version"] == "2026-02-25.clover"


def test_a_failure_stripe_says_to_retry_is_retried_twice(standin):
    standin.fail_next(2, status=500)

    page = call(standin, "list", "/v1/checkout/sessions", {"limit": 1})

    assert page["object"] == "list"
    assert standin.request_count == 3


def test_a_third_failure_in_a_row_is_reported(standin):
    standin.fail_next(3, status=500)

    error = failure(standin, "list", "/v1/checkout/sessions", {"limit": 1})

    assert isinstance(error, errors.ProviderUnavailable)
    assert standin.request_count == 3


class Noting(PooledAsyncClient):
    """Our transport, noting the address of each request; those for api.stripe.com go to the stand-in instead."""

    def __init__(self, standin):
        super().__init__()
        self.standin_url = standin.base_url
        self.urls: list[str] = []

    async def request_async(self, method, url, headers, post_data=None):
        self.urls.append(url)
        local = url.replace("https://api.stripe.com", self.standin_url, 1)
        return await super().request_async(method, local, headers, post_data)


def call_noted(transport: Noting, method: str, *args, api_base: str | None = None):
    async def run():
        api = StripeApi(TEST_KEY, api_base, http_client=transport)
        try:
            return await getattr(api, method)(*args)
        finally:
            await api.close()

    return asyncio.run(run())


def test_without_an_address_calls_go_to_stripes_own_api(standin):
    transport = Noting(standin)

    call_noted(transport, "list", "/v1/checkout/sessions", {"limit": 1})

    assert transport.urls == ["https://api.stripe.com/v1/checkout/sessions?limit=1"]


def test_a_session_id_is_sent_as_one_path_segment_whatever_it_holds(standin):
    transport = Noting(standin)

    with pytest.raises(errors.NotFound):
        call_noted(transport, "retrieve_checkout_session", "cs_test_a1B2c3/../../v1/events", api_base=standin.base_url)

    [url] = transport.urls
    assert urlsplit(url).path == "/v1/checkout/sessions/cs_test_a1B2c3%2F..%2F..%2Fv1%2Fevents"


def test_the_mode_is_the_keys(standin):
    assert StripeApi("sk_live_abc", standin.base_url).mode == "live"
    assert StripeApi(TEST_KEY, standin.base_url).mode == "test"


def test_an_unknown_session_is_not_found(standin):
    error = failure(standin, "retrieve_checkout_session", "cs_test_a1B2c3")

    assert isinstance(error, errors.NotFound)
    assert str(error) == "No such checkout session."


def test_a_not_found_where_none_was_expected_is_a_request_stripe_refused_naming_its_code(standin):
    standin.fail_next(1, status=404)

    error = failure(standin, "list", "/v1/checkout/sessions", {})

    assert isinstance(error, errors.ProviderRefused)
    assert str(error) == "Stripe refused our request (resource_missing)"
    assert error.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (400, errors.ProviderRefused, "Stripe refused our request (invalid_request)"),
        # The SDK raises its generic APIError for a 409 (a lock timeout that outlasted its retries).
        (409, errors.ProviderUnavailable, "Stripe failed or is unreachable (APIError)"),
        (429, errors.ProviderBusy, "Stripe is rate limiting this account"),
        (500, errors.ProviderUnavailable, "Stripe failed or is unreachable (APIError)"),
    ],
)
def test_each_failure_stripe_answers_becomes_a_domain_error_with_stripes_request_id(standin, status, kind, message):
    standin.fail_next(10, status=status)

    error = failure(standin, "create_checkout_session", SESSION)

    assert type(error) is kind
    assert str(error) == message
    assert error.request_id.startswith("req_")


@pytest.mark.parametrize("status", [401, 403])
def test_a_key_stripe_rejects_is_a_setting_error_naming_it(standin, status):
    standin.fail_next(1, status=status)

    error = failure(standin, "create_checkout_session", SESSION)

    assert isinstance(error, errors.SettingError)
    assert str(error) == "STRIPE_SECRET_KEY was rejected by Stripe"


def test_a_key_reused_with_another_request_is_an_idempotency_conflict(standin):
    call(standin, "create_checkout_session", SESSION, "key-2")

    error = failure(standin, "create_checkout_session", {**SESSION, "customer_email": "b@example.com"}, "key-2")

    assert isinstance(error, errors.IdempotencyConflict)
    assert str(error) == "idempotency key reused with another request"
    assert error.request_id.startswith("req_")


def test_stripe_unreachable_is_unavailable():
    async def run():
        api = StripeApi(TEST_KEY, "http://127.0.0.1:9")
        try:
            return await api.retrieve_checkout_session("cs_test_a1B2c3")
        finally:
            await api.close()

    with pytest.raises(errors.ProviderUnavailable) as raised:
        asyncio.run(run())

    assert str(raised.value) == "Stripe failed or is unreachable (APIConnectionError)"
    assert raised.value.request_id is None
