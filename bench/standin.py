"""The Stripe stand-in, run as its own process for the benchmark.

It shares the machine's cores with the servers under test, so it runs in a
separate process (its own GIL) and is driven over its `/_standin/` admin
endpoints: latency, reset, request counts, completing sessions.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

from bench import procs
from common.stripe_rules import API_VERSION

API_KEY = "sk_test_" + "benchmarkKey0123456789abc"
FRONTEND_URL = "http://localhost:5173"
RETURN_URL = FRONTEND_URL + "/hero-me?session_id={CHECKOUT_SESSION_ID}"


class Standin:
    def __init__(self, log_dir: Path):
        port = procs.free_port()
        command = [sys.executable, "-m", "devtools.stripe_standin", "--host", "127.0.0.1", "--port", str(port)]
        self.process = procs.Process("stripe-standin", command, None, procs.ROOT, log_dir, port)
        procs.wait_until_listening(self.process)
        self.url = self.process.url

    def stop(self) -> None:
        self.process.stop()

    def set_latency(self, seconds: float) -> None:
        procs.post_json(self.url + "/_standin/latency", {"seconds": seconds})

    def reset(self, latency: float) -> None:
        """Forget sessions and idempotency keys (a long load piles them up); reset also zeroes latency."""
        procs.post_json(self.url + "/_standin/reset", {})
        self.set_latency(latency)

    def request_count(self) -> int:
        _status, body = procs.request(self.url + "/_standin/requests")
        return json.loads(body)["request_count"]

    def create_session(self) -> str:
        """An open Checkout Session, created the way the service creates one."""
        form = urllib.parse.urlencode(
            {
                "mode": "payment",
                "ui_mode": "embedded_page",
                "return_url": RETURN_URL,
                "line_items[0][quantity]": "1",
                "line_items[0][price_data][currency]": "usd",
                "line_items[0][price_data][unit_amount]": "200",
                "line_items[0][price_data][product_data][name]": "Benchmark board",
            }
        ).encode()
        headers = {
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Stripe-Version": API_VERSION,
        }
        status, body = procs.request(self.url + "/v1/checkout/sessions", "POST", form, headers)
        if status != 200:
            raise RuntimeError(f"stand-in refused to create a session: {status} {body[:300]!r}")
        return json.loads(body)["id"]

    def complete(self, session_id: str) -> None:
        procs.post_json(self.url + f"/_standin/sessions/{session_id}/complete", {})
