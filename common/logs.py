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
writer once `install()` has run.
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
    """Trace, span and sampling of a request: W3C traceparent first, then X-Cloud-Trace-Context."""
    header = headers.get("traceparent")
    match = _TRACEPARENT.fullmatch(header.strip()) if header else None
    if match:
        trace, span, sampled = match.group(1), match.group(2), int(match.group(3), 16) & 1 == 1
    else:
        header = headers.get("x-cloud-trace-context")
        match = _CLOUD_TRACE.fullmatch(header.strip()) if header else None
        if not match:
            return {}
        trace = match.group(1).lower()
        span = f"{int(match.group(2)):016x}" if match.group(2) and int(match.group(2)) < 2**64 else None
        sampled = match.group(3) == "1"
    project = _where["project"]
    fields = {
        "logging.googleapis.com/trace": f"projects/{project}/traces/{trace}" if project else trace,
        "logging.googleapis.com/trace_sampled": sampled,
    }
    if span and span != "0" * 16:
        fields["logging.googleapis.com/spanId"] = span
    return fields


def write(severity: str, message: str, **fields) -> None:
    entry = {"severity": severity, "message": message, **fields}
    stream = sys.stderr if severity in ("ERROR", "CRITICAL") else sys.stdout
    # One write per line: print() writes the text and the newline separately,
    # and concurrent writers then interleave them, breaking the JSON lines.
    stream.write(json.dumps(entry, default=str) + "\n")
    stream.flush()


def error_report(message: str, error: BaseException, **fields) -> None:
    """An error a person must look at, in Error Reporting's format so it is grouped and notified.

    The stack names files, lines and code, and ends with the exception's
    class alone: its text may quote request data.
    """
    stack = "".join(traceback.format_tb(error.__traceback__))
    text = f"{message}\nTraceback (most recent call last):\n{stack}{error.__class__.__qualname__}"
    context = {"service": _where["service"] or "payments", "version": _where["version"] or "local"}
    write("ERROR", text, **{"@type": REPORTED_ERROR, "serviceContext": context, **fields})


class _JsonHandler(logging.Handler):
    """Routes Python's logging (ours and the libraries') through `write`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            severity = "WARNING" if record.levelno == logging.WARNING else record.levelname
            fields = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                error_report(record.getMessage(), record.exc_info[1], **fields)
            else:
                write(severity, record.getMessage(), **fields)
        except Exception:  # noqa: BLE001 - logging must never break a request
            self.handleError(record)


def install() -> None:
    """Send Python's logging through the JSON writer, once per process."""
    root = logging.getLogger()
    if not any(isinstance(handler, _JsonHandler) for handler in root.handlers):
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(_JsonHandler())
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)
