"""Structured log lines that Cloud Logging understands.

On Cloud Run and Cloud Functions a JSON object written to stdout/stderr
becomes a structured entry: `severity` and `message` are recognised, and
`logging.googleapis.com/trace` ties the line to the request's trace. Lines
carry the method, path, status and timings only: never headers, bodies or
query strings beyond the path, so no secret can reach a log.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def _trace(request) -> dict:
    header = request.headers.get("X-Cloud-Trace-Context", "") if request is not None else ""
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id.isalnum():
        return {}
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
    return {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}" if project else trace_id}


def write(severity: str, message: str, request=None, **fields) -> None:
    entry = {"severity": severity, "message": message, **fields, **_trace(request)}
    stream = sys.stderr if severity in ("ERROR", "CRITICAL") else sys.stdout
    # One write per line: print() writes the text and the newline separately,
    # and concurrent requests (one per serving thread) then interleave them,
    # which breaks lines Cloud Logging would otherwise parse as JSON.
    stream.write(json.dumps(entry, default=str) + "\n")
    stream.flush()


def request_line(request, name: str, status: int, seconds: float) -> None:
    severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    write(
        severity,
        f"{request.method} {request.path} {status}",
        request,
        endpoint=name,
        httpRequest={"requestMethod": request.method, "requestUrl": request.path, "status": status,
                     "latency": f"{seconds:.3f}s"},
    )


def error_line(request, name: str, status: int, message: str, cause: BaseException | None = None) -> None:
    """A refused or failed request; `cause` is named by class (e.g. Stripe's APIConnectionError)."""
    extra = {"cause": cause.__class__.__name__} if cause is not None else {}
    write("ERROR" if status >= 500 else "WARNING", message, request, endpoint=name, status=status, **extra)


def exception_line(request, name: str, error: BaseException) -> None:
    """An unexpected failure: the class and stack, not `str(error)`, which may quote data."""
    stack = "".join(traceback.format_tb(error.__traceback__))
    write("ERROR", f"Unhandled {error.__class__.__name__}", request, endpoint=name, stack=stack)
