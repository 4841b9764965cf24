"""common.logs: lines Cloud Logging ties to their trace, Error Reporting's format, Python's logging as JSON."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import traceback
import warnings
from datetime import UTC, datetime

import pytest

from common import logs
from tests.conftest import ROOT, WEBHOOK_SECRET, local_env, signed_headers

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
W3C_SPAN = "00f067aa0ba902b7"
CLOUD_TRACE = "105445aa7843bc8bf206b12000100000"


@pytest.fixture
def project():
    logs.configure("hero-me", "payments-api", "payments-api-00007")
    yield "hero-me"
    logs.configure(None)


# -- trace, span and sampling -------------------------------------------------------


def test_traceparent_gives_trace_span_and_sampling(project):
    fields = logs.trace_fields({"traceparent": f"00-{TRACE}-{W3C_SPAN}-01"})

    assert fields == {
        "logging.googleapis.com/trace": f"projects/hero-me/traces/{TRACE}",
        "logging.googleapis.com/spanId": W3C_SPAN,
        "logging.googleapis.com/trace_sampled": True,
    }


def test_traceparent_without_the_sampled_flag_is_not_sampled(project):
    assert (
        logs.trace_fields({"traceparent": f"00-{TRACE}-{W3C_SPAN}-00"})["logging.googleapis.com/trace_sampled"] is False
    )


def test_x_cloud_trace_context_gives_trace_and_its_decimal_span_in_hex(project):
    fields = logs.trace_fields({"x-cloud-trace-context": f"{CLOUD_TRACE}/1;o=1"})

    assert fields == {
        "logging.googleapis.com/trace": f"projects/hero-me/traces/{CLOUD_TRACE}",
        "logging.googleapis.com/spanId": "0000000000000001",
        "logging.googleapis.com/trace_sampled": True,
    }


def test_x_cloud_trace_context_may_name_the_trace_alone(project):
    assert logs.trace_fields({"x-cloud-trace-context": CLOUD_TRACE}) == {
        "logging.googleapis.com/trace": f"projects/hero-me/traces/{CLOUD_TRACE}",
        "logging.googleapis.com/trace_sampled": False,
    }


def test_traceparent_wins_over_x_cloud_trace_context(project):
    fields = logs.trace_fields(
        {"traceparent": f"00-{TRACE}-{W3C_SPAN}-01", "x-cloud-trace-context": f"{CLOUD_TRACE}/1;o=1"}
    )

    assert fields["logging.googleapis.com/trace"].endswith(TRACE)
    assert fields["logging.googleapis.com/spanId"] == W3C_SPAN


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{TRACE}-{W3C_SPAN}",  # no flags
        f"00-{TRACE.upper()}-{W3C_SPAN}-01",  # W3C ids are lowercase
        f"00-{'0' * 32}-{W3C_SPAN}-01",  # the invalid all-zero trace
        f"00-{TRACE}-{'0' * 16}-01",  # the invalid all-zero parent
        f"ff-{TRACE}-{W3C_SPAN}-01",  # the invalid version
    ],
)
def test_a_malformed_traceparent_falls_back_to_x_cloud_trace_context(project, traceparent):
    fields = logs.trace_fields({"traceparent": traceparent, "x-cloud-trace-context": f"{CLOUD_TRACE}/1;o=1"})

    assert fields["logging.googleapis.com/trace"] == f"projects/hero-me/traces/{CLOUD_TRACE}"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "garbage"},
        {"x-cloud-trace-context": "not-a-trace/1;o=1"},
        {"x-cloud-trace-context": f"{'0' * 32}/1;o=1"},
        {"traceparent": "garbage", "x-cloud-trace-context": "also garbage"},
    ],
)
def test_without_a_well_formed_header_a_line_has_no_trace(project, headers):
    assert logs.trace_fields(headers) == {}


def test_a_span_too_large_for_64_bits_is_left_out(project):
    fields = logs.trace_fields({"x-cloud-trace-context": f"{CLOUD_TRACE}/{2**64};o=1"})

    assert "logging.googleapis.com/spanId" not in fields
    assert fields["logging.googleapis.com/trace"].endswith(CLOUD_TRACE)


def test_a_request_line_carries_the_trace_of_its_traceparent(client, log_lines, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "hero-me")
    log_lines()

    client.post("/api/checkout/embedded-session", json={}, headers={"traceparent": f"00-{TRACE}-{W3C_SPAN}-01"})

    [line] = [entry for entry in log_lines() if entry.get("endpoint") == "create_embedded_session"]
    assert line["logging.googleapis.com/trace"] == f"projects/hero-me/traces/{TRACE}"
    assert line["logging.googleapis.com/spanId"] == W3C_SPAN


# -- what a request line holds --------------------------------------------------------

# What Cloud Run's own request log records for every request.
CLOUD_RUN_REQUEST_LOG = {
    "httpRequest",
    "method",
    "requestMethod",
    "url",
    "requestUrl",
    "path",
    "latency",
    "userAgent",
    "user_agent",
    "remoteIp",
    "referer",
    "responseSize",
    "requestSize",
}


def test_request_lines_add_what_only_the_code_knows_and_repeat_nothing_cloud_run_logs(
    client, standin, log_lines, session_id
):
    (event,) = standin.complete(session_id)
    payload = json.dumps(event)

    log_lines()
    client.post("/webhook", content=payload, headers=signed_headers(payload))
    client.get("/api/checkout/session-status", params={"session_id": session_id})

    lines = {line["endpoint"]: line for line in log_lines() if "endpoint" in line}
    assert not [line for line in lines.values() if CLOUD_RUN_REQUEST_LOG & set(line)]
    webhook, status = lines["stripe_webhook"], lines["session_status"]
    assert {k: webhook[k] for k in ("status", "event_id", "event_type", "session_id", "outcome")} == {
        "status": 200,
        "event_id": event["id"],
        "event_type": "checkout.session.completed",
        "session_id": session_id,
        "outcome": "recorded",
    }
    assert {k: status[k] for k in ("status", "session_id", "outcome")} == {
        "status": 200,
        "session_id": session_id,
        "outcome": "paid",
    }


# -- errors that need a person: Error Reporting's format ----------------------------------


def raised(error: Exception) -> Exception:
    try:
        raise error
    except Exception as caught:  # noqa: BLE001
        return caught


def test_an_error_report_carries_the_stack_and_the_class_but_not_the_exception_text(project, log_lines):
    log_lines()

    logs.error_report(
        "webhook: unhandled KeyError",
        raised(KeyError("buyer@example.com")),
        endpoint="stripe_webhook",
        error="KeyError",
    )

    [line] = log_lines()
    assert line["@type"] == logs.REPORTED_ERROR
    assert line["severity"] == "ERROR"
    assert line["serviceContext"] == {"service": "payments-api", "version": "payments-api-00007"}
    assert line["message"].startswith("webhook: unhandled KeyError\nTraceback (most recent call last):\n")
    assert "test_logs.py" in line["message"] and line["message"].endswith("\nKeyError")
    assert "buyer@example.com" not in json.dumps(line)
    assert (line["endpoint"], line["error"]) == ("stripe_webhook", "KeyError")


def test_a_misconfigured_secret_is_an_error_report_naming_the_setting_never_its_value(
    new_client, monkeypatch, log_lines
):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "not-a-signing-secret-" + WEBHOOK_SECRET)
    client = new_client()
    log_lines()

    response = client.post("/webhook", content="{}", headers={"Stripe-Signature": "t=1,v1=abc"})

    assert response.status_code == 500
    [line] = [line for line in log_lines() if line.get("endpoint") == "stripe_webhook"]
    assert line["@type"] == logs.REPORTED_ERROR
    assert (line["status"], line["setting"], line["error"]) == (500, "STRIPE_WEBHOOK_SECRET", "SettingError")
    assert line["message"].startswith("stripe_webhook 500: STRIPE_WEBHOOK_SECRET ")
    assert "Traceback (most recent call last)" in line["message"]
    assert WEBHOOK_SECRET not in json.dumps(line)


def test_a_store_outage_is_an_error_line_not_an_error_report(
    new_client, standin, session_id, tmp_path, monkeypatch, log_lines
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PAYMENTS_STORE", f"sqlite:///{blocker / 'payments.db'}")
    (event,) = standin.complete(session_id)
    payload = json.dumps(event)

    client = new_client()
    log_lines()
    response = client.post("/webhook", content=payload, headers=signed_headers(payload))

    assert response.status_code == 503
    [line] = [line for line in log_lines() if line.get("endpoint") == "stripe_webhook"]
    assert (line["severity"], line["error"]) == ("ERROR", "StoreUnavailable")
    assert "@type" not in line  # it passes on its own; the webhook 5xx alert watches its rate


# -- Python's logging and warnings, through the same writer --------------------------------

SERVED_PROCESS = """
import logging, warnings
logging.basicConfig()  # a plain handler some library set up: it must not print the records again
import main  # the entry point installs the JSON writer
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager
secretmanager.SecretManagerServiceClient(credentials=AnonymousCredentials())  # sets up Google's library logging
logging.getLogger("google.api_core.retry").warning("Retrying due to %s", "Unavailable")
warnings.warn("the old client is deprecated", UserWarning)
logging.getLogger("stripe").info("not shown: below WARNING")
try:
    {}["missing"]
except KeyError:
    logging.getLogger("urllib3").exception("connection pool failed")
"""


def test_library_logging_and_warnings_become_one_json_line_each_in_a_served_process():
    result = subprocess.run(
        [sys.executable, "-c", SERVED_PROCESS], cwd=ROOT, env=local_env(), capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    retry, warning, failure = entries
    assert (retry["severity"], retry["logger"], retry["message"]) == (
        "WARNING",
        "google.api_core.retry",
        "Retrying due to Unavailable",
    )
    assert (warning["severity"], warning["logger"]) == ("WARNING", "py.warnings")
    assert "UserWarning: the old client is deprecated" in warning["message"]
    assert (failure["severity"], failure["@type"], failure["logger"]) == ("ERROR", logs.REPORTED_ERROR, "urllib3")
    assert failure["message"].startswith("connection pool failed\nTraceback")


# -- the writer ------------------------------------------------------------------------------


def test_without_a_project_a_line_carries_the_bare_trace_id(log_lines):
    logs.configure(None)

    fields = logs.trace_fields({"traceparent": f"00-{TRACE}-{W3C_SPAN}-01"})

    assert fields["logging.googleapis.com/trace"] == TRACE


@pytest.mark.parametrize(("flags", "sampled"), [("10", False), ("0b", True)])
def test_only_the_lowest_bit_of_the_hex_trace_flags_means_sampled(project, flags, sampled):
    fields = logs.trace_fields({"traceparent": f"00-{TRACE}-{W3C_SPAN}-{flags}"})

    assert fields["logging.googleapis.com/trace_sampled"] is sampled


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (f"{CLOUD_TRACE}/123;o=1", "000000000000007b"),
        (f"{CLOUD_TRACE}/200", "00000000000000c8"),
        (f"{CLOUD_TRACE}/{2**64 - 1};o=0", "ffffffffffffffff"),
    ],
)
def test_x_cloud_trace_context_spans_up_to_64_bits_are_kept_in_hex(project, header, span):
    assert logs.trace_fields({"x-cloud-trace-context": header})["logging.googleapis.com/spanId"] == span


def test_a_zero_span_is_left_out(project):
    fields = logs.trace_fields({"x-cloud-trace-context": f"{CLOUD_TRACE}/0;o=1"})

    assert "logging.googleapis.com/spanId" not in fields
    assert fields["logging.googleapis.com/trace"] == f"projects/hero-me/traces/{CLOUD_TRACE}"


@pytest.mark.parametrize(("severity", "stream"), [("ERROR", "err"), ("CRITICAL", "err"), ("WARNING", "out")])
def test_errors_go_to_stderr_and_the_rest_to_stdout(capsys, severity, stream):
    logs.write(severity, "a line")

    captured = capsys.readouterr()
    assert json.loads(getattr(captured, stream)) == {"severity": severity, "message": "a line"}
    assert getattr(captured, "out" if stream == "err" else "err") == ""


def test_a_field_json_cannot_hold_is_written_as_its_text(log_lines):
    log_lines()

    logs.write("INFO", "a line", at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))

    assert log_lines() == [{"severity": "INFO", "message": "a line", "at": "2026-01-02 03:04:05+00:00"}]


def nested_failure() -> Exception:
    def inner():
        raise KeyError("buyer@example.com")

    try:
        inner()
    except KeyError as caught:
        return caught
    raise AssertionError("inner() raised nothing")


def test_an_error_report_is_the_message_then_pythons_traceback_then_the_class(project, log_lines):
    error = nested_failure()
    log_lines()

    logs.error_report("probe: unhandled KeyError", error)

    [line] = log_lines()
    stack = "".join(traceback.format_tb(error.__traceback__))
    assert line["message"] == f"probe: unhandled KeyError\nTraceback (most recent call last):\n{stack}KeyError"


def test_an_error_report_outside_cloud_run_names_a_local_service(log_lines):
    logs.configure(None)
    log_lines()

    logs.error_report("probe failed", nested_failure())

    [line] = log_lines()
    assert line["serviceContext"] == {"service": "payments", "version": "local"}


# -- Python's logging, in this process -------------------------------------------------------


@pytest.fixture
def saved_logging():
    """This process's root logger; its handlers, its level, Google's level and warnings capture put back after."""
    root, google = logging.getLogger(), logging.getLogger("google")
    handlers, level, google_level = list(root.handlers), root.level, google.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    google.setLevel(google_level)
    logging.captureWarnings(False)


@pytest.fixture
def bare_logging(saved_logging):
    """The root logger with no handlers yet."""
    saved_logging.handlers[:] = []
    return saved_logging


@pytest.fixture
def json_logging(saved_logging):
    """`logs.install()` on this process's root logger, undone after the test."""
    logs.install()
    return saved_logging


def test_a_library_warning_is_one_json_line_naming_its_logger(json_logging, log_lines):
    log_lines()

    logging.getLogger("google.api_core.retry").warning("Retrying due to %s", "Unavailable")

    assert log_lines() == [
        {"severity": "WARNING", "message": "Retrying due to Unavailable", "logger": "google.api_core.retry"}
    ]


def test_a_logged_exception_is_an_error_report_naming_its_logger(json_logging, log_lines):
    log_lines()

    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("urllib3").exception("connection pool failed")

    [line] = log_lines()
    assert line["@type"] == logs.REPORTED_ERROR
    assert line["logger"] == "urllib3"
    assert line["message"].startswith("connection pool failed\nTraceback (most recent call last):\n")
    assert line["message"].endswith("\nKeyError")


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (60, "CRITICAL"),
        (50, "CRITICAL"),
        (45, "ERROR"),
        (40, "ERROR"),
        (35, "WARNING"),
        (30, "WARNING"),
        (25, "INFO"),
        (20, "INFO"),
        (15, "DEBUG"),
    ],
)
def test_each_logging_level_has_cloud_loggings_severity(json_logging, log_lines, level, severity):
    logger = logging.getLogger("tests.levels")
    logger.setLevel(1)
    log_lines()

    logger.log(level, "a record")

    assert [line["severity"] for line in log_lines()] == [severity]


def test_installing_twice_writes_each_record_once(json_logging, log_lines):
    logs.install()
    log_lines()

    logging.getLogger("tests.twice").warning("once")

    assert [line["message"] for line in log_lines()] == ["once"]


def test_a_plain_stream_handler_is_replaced_and_other_handlers_are_kept(saved_logging):
    saved_logging.handlers[:] = [logging.StreamHandler(), logging.NullHandler()]

    logs.install()

    assert [type(handler).__name__ for handler in saved_logging.handlers] == ["NullHandler", "_JsonHandler"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (logging.NOTSET, logging.WARNING),
        (logging.ERROR, logging.WARNING),
        (logging.INFO, logging.INFO),
        (logging.WARNING, logging.WARNING),
    ],
)
def test_the_root_level_lets_warnings_through_and_keeps_a_lower_one(bare_logging, before, after):
    logging.getLogger().setLevel(before)

    logs.install()

    assert logging.getLogger().level == after


def test_warnings_become_log_records(bare_logging, log_lines):
    log_lines()
    with warnings.catch_warnings():  # the test runner's own recording of warnings is set aside
        warnings.simplefilter("always")
        logs.install()
        warnings.warn("the old client is deprecated", UserWarning, stacklevel=1)

    [line] = log_lines()
    assert (line["severity"], line["logger"]) == ("WARNING", "py.warnings")
    assert "the old client is deprecated" in line["message"]


@pytest.mark.parametrize(("before", "after"), [(logging.NOTSET, logging.WARNING), (logging.DEBUG, logging.DEBUG)])
def test_googles_loggers_get_a_level_so_its_clients_leave_them_reaching_the_root(bare_logging, before, after):
    logging.getLogger().setLevel(logging.NOTSET)
    logging.getLogger("google").setLevel(before)

    logs.install()

    assert logging.getLogger("google").level == after


def test_a_record_that_cannot_be_formatted_never_breaks_the_caller(json_logging, capsys):
    [writer] = [handler for handler in json_logging.handlers if isinstance(handler, logs._JsonHandler)]
    logger = logging.getLogger("tests.broken")
    logger.addHandler(writer)  # ours alone: the test runner's own capture raises on such a record
    logger.propagate = False
    try:
        logger.warning("%d payments", "several")
    finally:
        logger.removeHandler(writer)
        logger.propagate = True

    err = capsys.readouterr().err
    assert "--- Logging error ---" in err
    assert "Message: '%d payments'" in err  # which call went wrong, for whoever reads the error
