"""The example page in a real, headless Chromium: the checkout flow as a buyer's browser runs it.

The stack is the real one run_local starts (the Stripe stand-in, a
functions-framework process, the example page on its own port), so the page
and the API are different origins and the browser enforces CORS: creating a
session is a preflighted request (it carries an Idempotency-Key header).
Chromium and chromedriver come from the system packages (`apt-get install
chromium chromium-driver`); nothing is downloaded. Without them the tests
skip locally, but in CI (CI=true) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import requests

from checkout import create
from devtools import simulate
from devtools.run_local import ExamplePageServer

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1024,768",
)
WAIT_SECONDS = 15  # the page polls every 2 s


def find_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or skip (fail in CI) with the reason."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
    )
    problem = None
    try:
        import selenium  # noqa: F401
    except ImportError:
        problem = "selenium is not installed (pip install -r requirements-dev.txt)"
    if chromium is None or driver is None:
        problem = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    if problem:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{problem}; CI must run the browser tests")
        pytest.skip(problem)
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = find_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to read the console's CORS message
    driver = None
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        driver.set_page_load_timeout(WAIT_SECONDS)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, condition, message: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1).until(condition)
    except TimeoutException:
        status = driver.find_element("id", "status")
        error = driver.find_element("id", "error")
        raise AssertionError(
            f"{message}; page status {status.get_attribute('data-state')!r} {status.text!r}, error {error.text!r}"
        ) from None


def state_is(state: str):
    return lambda driver: driver.find_element("id", "status").get_attribute("data-state") == state


def open_page(driver, url: str) -> None:
    """Load the page and mark the window, so a later check can tell it was never reloaded."""
    driver.get(url)
    driver.execute_script(
        "window.__loadedOnce = true; window.__idempotencyKeys = [];"
        "crypto.randomUUID = () => {"
        "  const key = `key-from-the-browser-test-${Date.now()}-${window.__idempotencyKeys.length + 1}`;"
        "  window.__idempotencyKeys.push(key); return key; };"
    )


def test_page_pays_through_cors_and_shows_paid_without_a_reload(browser, stack):
    page = f"http://127.0.0.1:{stack.options.page_port}/"
    open_page(browser, page)

    browser.find_element("id", "pay-button").click()
    wait_for(browser, state_is("open"), "the page never showed the new session as open")
    session_id = browser.find_element("id", "session-id").text
    created = stack.standin.session(session_id)
    # The page's own Idempotency-Key reached Stripe, scoped to the caller: the preflight allowed the custom header.
    create_request = [r for r in stack.standin.requests if r.method == "POST" and r.path == "/v1/checkout/sessions"][-1]

    report = simulate.pay(simulate.load_config(stack.env_file), session_id)
    wait_for(browser, state_is("paid"), "the page never showed the payment as paid")

    assert created["status"] == "open"
    page_key = browser.execute_script("return window.__idempotencyKeys.at(-1)")
    assert page_key.startswith("key-from-the-browser-test-")
    assert create_request.headers.get("Idempotency-Key") == create.scoped_idempotency_key(page_key, "127.0.0.1")
    assert session_id in browser.find_element("id", "simulate-hint").text
    assert report.ok and report.recorded["payment_status"] == "paid"
    assert browser.execute_script("return window.__loadedOnce === true")
    assert browser.find_element("id", "error").is_displayed() is False


def test_returning_from_checkout_shows_that_sessions_status(browser, stack):
    response = requests.post(
        f"http://127.0.0.1:{stack.options.api_port}/api/checkout/embedded-session", json={}, timeout=10
    )
    session_id = response.json()["client_secret"].split("_secret_")[0]
    simulate.expire(simulate.load_config(stack.env_file), session_id)

    open_page(browser, f"http://127.0.0.1:{stack.options.page_port}/hero-me?session_id={session_id}")

    wait_for(browser, state_is("expired"), "the return page never showed the session as expired")
    assert not browser.find_element("id", "pay-button").is_displayed()


def test_a_failed_delayed_payment_shows_failed_and_try_again_starts_a_new_session(browser, stack):
    open_page(browser, f"http://127.0.0.1:{stack.options.page_port}/")
    browser.find_element("id", "pay-button").click()
    wait_for(browser, state_is("open"), "the page never showed the new session as open")
    first = browser.find_element("id", "session-id").text

    simulate.pay(simulate.load_config(stack.env_file), first, "async-fail")
    wait_for(browser, state_is("failed"), "the page never showed the payment as failed")
    retry = browser.find_element("id", "retry-button")
    assert retry.is_displayed()

    retry.click()
    wait_for(
        browser,
        lambda d: d.find_element("id", "session-id").text not in ("", first),
        "Try again did not start a new session",
    )
    wait_for(browser, state_is("open"), "the new session was not shown as open")
    second = browser.find_element("id", "session-id").text
    assert stack.standin.session(second)["status"] == "open"
    assert not browser.find_element("id", "retry-button").is_displayed()


def test_a_refund_after_payment_shows_refunded_on_a_reloaded_return_page(browser, stack):
    response = requests.post(
        f"http://127.0.0.1:{stack.options.api_port}/api/checkout/embedded-session", json={}, timeout=10
    )
    session_id = response.json()["client_secret"].split("_secret_")[0]
    config = simulate.load_config(stack.env_file)
    simulate.pay(config, session_id)
    return_page = f"http://127.0.0.1:{stack.options.page_port}/hero-me?session_id={session_id}"
    open_page(browser, return_page)
    wait_for(browser, state_is("paid"), "the return page never showed the payment as paid")

    report = simulate.refund(config, session_id)
    browser.get(return_page)

    wait_for(browser, state_is("refunded"), "the reloaded return page never showed the refund")
    assert report.ok and report.recorded["outcome"] == "refunded"


def test_returning_to_a_session_still_open_offers_the_form_again(browser, stack):
    response = requests.post(
        f"http://127.0.0.1:{stack.options.api_port}/api/checkout/embedded-session", json={}, timeout=10
    )
    session_id = response.json()["client_secret"].split("_secret_")[0]

    open_page(browser, f"http://127.0.0.1:{stack.options.page_port}/hero-me?session_id={session_id}")

    wait_for(browser, state_is("open"), "the return page never showed the session as open")
    wait_for(browser, lambda d: d.find_element("id", "retry-button").is_displayed(), "no way to pay again")


def test_an_origin_not_in_allowed_origins_is_blocked_by_the_browser(browser, stack):
    other = ExamplePageServer(stack.page.config, "127.0.0.1", 0)
    other.start()
    try:
        sessions_before = len(stack.standin.sessions)
        open_page(browser, f"http://127.0.0.1:{other.port}/")
        browser.get_log("browser")  # start from an empty console

        browser.find_element("id", "pay-button").click()
        wait_for(browser, lambda d: d.find_element("id", "error").is_displayed(), "the page showed no error")
        error = browser.find_element("id", "error")
        console = " ".join(entry["message"] for entry in browser.get_log("browser"))

        assert f"http://127.0.0.1:{other.port}" not in stack.api_env["ALLOWED_ORIGINS"]
        assert error.get_attribute("data-kind") == "network"
        assert "CORS" in error.text
        assert "blocked by CORS policy" in console and "preflight" in console
        assert len(stack.standin.sessions) == sessions_before
    finally:
        other.stop()
