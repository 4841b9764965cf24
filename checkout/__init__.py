"""Checkout for the browser: create an Embedded Checkout session, report its status."""
