"""What every entry point shares: settings and secrets, the Stripe client, HTTP
helpers (JSON errors, CORS, body limits), rate limits and structured logs.

Nothing here does work at import time, so importing a module costs only its
own imports; heavy Google clients are imported where they are first used.
"""
