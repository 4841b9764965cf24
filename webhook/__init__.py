"""Stripe's webhook: verify each event, store it, then update the payment record."""
