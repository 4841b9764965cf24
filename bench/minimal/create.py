"""Yardstick for create_embedded_session: functions-framework and one StripeClient, nothing else.

This is the least a Python function doing the same job can import and run;
the benchmark compares each entry point's cold start with it. It has no
validation, limits, CORS or logging, and must not grow any.
"""

import os

import functions_framework
import stripe

client = stripe.StripeClient(
    os.environ["STRIPE_SECRET_KEY"],
    stripe_version="2026-10-28.endive",
    base_addresses={"api": os.environ["STRIPE_API_BASE"]},
)


@functions_framework.http
def create_embedded_session(request):
    session = client.v1.checkout.sessions.create(
        params={
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "product_data": {"name": "Hero Me Feelings - Personalized AAC Board"},
                        "unit_amount": 200,
                    },
                    "quantity": 1,
                }
            ],
            "mode": "payment",
            "ui_mode": "embedded_page",
            "return_url": os.environ["FRONTEND_URL"] + "/hero-me?session_id={CHECKOUT_SESSION_ID}",
        }
    )
    return {"client_secret": session.client_secret}
