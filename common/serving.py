"""How the server reads a request's head: bounded in size and in time, refused as JSON.

`functions-framework` serves an async function with gunicorn's
UvicornWorker, so uvicorn parses HTTP (with httptools), not gunicorn:
gunicorn's `limit_request_line` (which functions-framework sets to 0,
unlimited) and `limit_request_field_size` do not apply. uvicorn's httptools
protocol buffers a request line and headers of any size, waits without end
for a head that never finishes, and answers malformed HTTP with a text/plain
400. functions-framework offers no option for the worker, so
`bound_request_heads()` sets the worker's protocol class through
`UvicornWorker.CONFIG_KWARGS`, the hook uvicorn documents for customising
that worker; main.py calls it while gunicorn's master loads the code, before
the worker is built.

Request bodies are bounded separately, per endpoint (`common.http.read_body`).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Node's and h11's default: ample for a browser's or Stripe's headers plus
# what Google's front end adds (forwarding, tracing).
MAX_HEAD_BYTES = 16 * 1024
# A head that has started must be complete by then. An idle keep-alive
# connection is closed sooner, by uvicorn's own keep-alive timeout.
HEAD_TIMEOUT_SECONDS = 5.0
HEAD_TOO_LARGE = (431, f"Request line and headers are larger than {MAX_HEAD_BYTES} bytes.")
# The methods functions-framework routes to the function, which then allows
# its own few. Starlette would answer any other (TRACE, CONNECT, …) with a
# text/plain 405; it is answered here, in JSON, with the same Allow.
ROUTED_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH")
NOT_ROUTED = (405, "Method not allowed.")


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with the request head bounded and every refusal in JSON."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._reading_head = True
        self._head_bytes = 0
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)
        # Parsed first, so a chunk that completes a head and starts a body is not counted against it;
        # the parser holds at most one chunk past the limit.
        super().data_received(data)
        if self._reading_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refuse(*HEAD_TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        # A head that arrived in one chunk is measured here; httptools turns the raise into send_400_response.
        if len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) > MAX_HEAD_BYTES:
            self._refusal = HEAD_TOO_LARGE
            raise ValueError("request head too large")
        if self.parser.get_method().decode("ascii") not in ROUTED_METHODS:
            self._refusal = NOT_ROUTED
            raise ValueError("method not routed")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True  # the connection's next bytes start the next request's head

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes it cannot parse (a bad chunk size, a bad header line, a head too large)."""
        self._refuse(*(self._refusal or (400, "The request is not valid HTTP/1.1.")))

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._reading_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head waits behind a request still being answered: look again later.
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)
        elif self._head_bytes:
            self._refuse(408, f"Request headers did not arrive within {HEAD_TIMEOUT_SECONDS:g} seconds.")
        else:
            self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, message: str) -> None:
        """Answer with a JSON error and close: the rest of the connection cannot be parsed."""
        body = json.dumps({"error": message}).encode("ascii")
        reason = {
            400: b"Bad Request",
            405: b"Method Not Allowed",
            408: b"Request Timeout",
            431: b"Request Header Fields Too Large",
        }[status]
        head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        if status == 405:
            head.append(b"allow: " + ", ".join(ROUTED_METHODS).encode("ascii") + b"\r\n")
        head += [
            b"content-type: application/json\r\n",
            b"cache-control: no-store\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def bound_request_heads() -> None:
    """Serve with BoundedHttpToolsProtocol in the UvicornWorker that functions-framework runs."""
    from uvicorn_worker import UvicornWorker

    UvicornWorker.CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "http": BoundedHttpToolsProtocol}
