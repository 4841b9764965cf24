"""Yardstick for session_status: read the payment record in Firestore, else ask Stripe.

The same job as the real entry point on Google Cloud (where the payment
store is Firestore) with nothing else: functions-framework, one Firestore
client, one StripeClient.
"""

import os

import functions_framework
import stripe
from google.cloud import firestore

client = stripe.StripeClient(
    os.environ["STRIPE_SECRET_KEY"],
    stripe_version="2026-10-28.endive",
    base_addresses={"api": os.environ["STRIPE_API_BASE"]},
)
db = firestore.Client()


@functions_framework.http
def session_status(request):
    session_id = request.args["session_id"]
    record = db.collection("payments").document(session_id).get()
    if record.exists and record.get("status") in ("complete", "expired"):
        return {"status": record.get("status"), "payment_status": record.get("payment_status")}
    session = client.v1.checkout.sessions.retrieve(session_id)
    return {"status": session.status, "payment_status": session.payment_status}
