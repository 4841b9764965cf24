"""Structured log lines that Cloud Logging and Error Reporting understand.

On Cloud Run a JSON object written to stdout/stderr becomes a structured
entry: `severity` and `message` are recognised, `logging.googleapis.com/trace`
and `…/spanId` tie the line to the request's trace, and an entry typed as a
ReportedErrorEvent with a stack trace in `message` is grouped by Error
Reporting, which notifies. Lines carry names, ids and statuses only: never
headers, bodies or query strings, so no secret and no buyer's text reaches a
log. Cloud Run's own request log already records method, path, latency and
size; our one line per request adds what only the code knows (endpoint, the
session or event it concerned, its outcome).

Python's `logging` (the libraries' warnings included) goes through the same
writer once `install()` has run: each process's entry point calls it once
(main.py for the functions and the service, `payments.reconcile` for the
job), so a context built by a test or a script changes no global state.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback

REPORTED_ERROR = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"

_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?")

# Set once per instance by `configure`: the project for trace links, the service for Error Reporting.
_where: dict = {"project": None, "service": None, "version": None}


def configure(project: str | None, service: str | None = None, version: str | None = None) -> None:
    _where.update(project=project, service=service, version=version)


def trace_fields(headers) -> dict:
    """Trace, span and sampling of a request: W3C traceparent first, then X-Cloud-Trace-Context.

    A header that is malformed, or names the all-zero trace W3C reserves as
    invalid, is passed over for the next one; with neither, the line simply
    has no trace.
    """
    found = _traceparent(headers.get("traceparent")) or _cloud_trace_context(headers.get("x-cloud-trace-context"))
    if found is None:
        return {}
    trace, span, sampled = found
    project = _where["project"]
    fields = {
        "logging.googleapis.com/trace": f"projects/{project}/traces/{trace}" if project else trace,
        "logging.googleapis.com/trace_sampled": sampled,
    }
    if span and span != "0" * 16:
        fields["logging.googleapis.com/spanId"] = span
    return fields


def _traceparent(header: str | None) -> tuple[str, str, bool] | None:
    """version-trace_id-parent_id-flags (https://www.w3.org/TR/trace-context/#traceparent-header)."""
    match = _TRACEPARENT.fullmatch(header.strip()) if header else None
    if not match or match.group(0).startswith("ff") or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(2), int(match.group(3), 16) & 1 == 1


def _cloud_trace_context(header: str | None) -> tuple[str, str | None, bool] | None:
    """TRACE_ID/SPAN_ID;o=OPTIONS, the span in decimal."""
    match = _CLOUD_TRACE.fullmatch(header.strip()) if header else None
    if not match or match.group(1) == "0" * 32:
        return None
    span = f"{int(match.group(2)):016x}" if match.group(2) and int(match.group(2)) < 2**64 else None
    return match.group(1).lower(), span, match.group(3) == "1"


def write(severity: str, message: str, **fields) -> None:
    entry = {"severity": severity, "message": message, **fields}
    stream = sys.stderr if severity in ("ERROR", "CRITICAL") else sys.stdout
    # One write per line: print() writes the text and the newline separately,
    # and concurrent writers then interleave them, breaking the JSON lines.
    stream.write(json.dumps(entry, default=str) + "\n")
    stream.flush()


def error_report(message: str, exception: BaseException, /, **fields) -> None:
    """An error a person must look at, in Error Reporting's format so it is grouped and notified.

    The stack names files, lines and code, and ends with the exception's
    class alone: its text may quote request data. `fields` may carry the
    request line's own `error` (the class name) beside the exception.
    """
    stack = "".join(traceback.format_tb(exception.__traceback__))
    text = f"{message}\nTraceback (most recent call last):\n{stack}{exception.__class__.__qualname__}"
    context = {"service": _where["service"] or "payments", "version": _where["version"] or "local"}
    write("ERROR", text, **{"@type": REPORTED_ERROR, "serviceContext": context, **fields})


class _JsonHandler(logging.Handler):
    """Routes Python's logging (ours and the libraries') through `write`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                error_report(record.getMessage(), record.exc_info[1], **fields)
            else:
                write(_severity(record.levelno), record.getMessage(), **fields)
        except Exception:  # noqa: BLE001 - logging must never break a request
            self.handleError(record)


def _severity(level: int) -> str:
    """Cloud Logging's severity for a logging level, custom levels included."""
    for bound, severity in (
        (logging.CRITICAL, "CRITICAL"),
        (logging.ERROR, "ERROR"),
        (logging.WARNING, "WARNING"),
        (logging.INFO, "INFO"),
    ):
        if level >= bound:
            return severity
    return "DEBUG"


def install() -> None:
    """Send Python's logging, and `warnings`, through the JSON writer; once per process, at its entry point.

    A plain stream handler already on the root logger (`logging.basicConfig`)
    is removed: it would print each record a second time as text, which
    Cloud Logging splits into one entry per line. Other handlers (a test
    runner's capture) are kept. Warnings become WARNING entries of the
    `py.warnings` logger instead of several lines on stderr.
    """
    root = logging.getLogger()
    if any(isinstance(handler, _JsonHandler) for handler in root.handlers):
        return
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    root.addHandler(_JsonHandler())
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    # Google's client libraries, on their first client, stop the "google" loggers from
    # reaching the root unless the application has configured them: given a level, they do.
    google = logging.getLogger("google")
    if google.level == logging.NOTSET:
        google.setLevel(root.level)
    logging.captureWarnings(True)
