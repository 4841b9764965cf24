"""Yardstick for stripe_webhook: verify Stripe's signature, store the event once in Firestore.

The same job as the real entry point with nothing else: functions-framework,
the stripe package's signature check and one Firestore transaction.
"""

import os

import functions_framework
import stripe
from google.cloud import firestore

db = firestore.Client()


@firestore.transactional
def store(transaction, event):
    session = event["data"]["object"]
    event_ref = db.collection("stripe_events").document(event["id"])
    payment_ref = db.collection("payments").document(session["id"])
    if event_ref.get(transaction=transaction).exists:
        return False
    transaction.create(event_ref, {"type": event["type"], "session_id": session["id"]})
    transaction.set(payment_ref, {"status": session["status"], "payment_status": session["payment_status"]}, merge=True)
    return True


@functions_framework.http
def stripe_webhook(request):
    event = stripe.Webhook.construct_event(
        request.get_data(as_text=True), request.headers["Stripe-Signature"], os.environ["STRIPE_WEBHOOK_SECRET"]
    )
    stored = store(db.transaction(), event)
    return {"received": True, "duplicate": not stored}
