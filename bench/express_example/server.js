// The Node/Express equivalent of the Python create and status endpoints.
//
// It exists only as the benchmark's yardstick: the same Stripe calls, with
// the same parameters, through Stripe's own Node SDK, to the same stand-in.
// It has none of the Python service's checks (rate limits, body validation,
// CORS, payment store), so it is the fastest a straightforward Node service
// on this machine gets, not a replacement.
//
//   STRIPE_API_BASE=http://127.0.0.1:12111 STRIPE_SECRET_KEY=sk_test_... PORT=8090 node server.js

"use strict";

const express = require("express");
const Stripe = require("stripe");

const base = new URL(process.env.STRIPE_API_BASE || "https://api.stripe.com");
const stripe = new Stripe(process.env.STRIPE_SECRET_KEY, {
  apiVersion: "2026-10-28.endive",
  host: base.hostname,
  port: base.port || (base.protocol === "https:" ? 443 : 80),
  protocol: base.protocol.replace(":", ""),
  maxNetworkRetries: 2,
  timeout: 10000,
});
const returnUrl =
  (process.env.FRONTEND_URL || "http://localhost:5173") + "/hero-me?session_id={CHECKOUT_SESSION_ID}";

const app = express();
app.use(express.json({ limit: "16kb" }));

app.post("/api/checkout/embedded-session", async (req, res) => {
  try {
    const session = await stripe.checkout.sessions.create({
      line_items: [
        {
          price_data: {
            currency: "usd",
            product_data: {
              name: "Hero Me Feelings - Personalized AAC Board",
              description: "AI-powered personalized feelings board with 24+ custom images",
            },
            unit_amount: 200,
          },
          quantity: 1,
        },
      ],
      mode: "payment",
      ui_mode: "embedded_page",
      return_url: returnUrl,
    });
    res.json({ client_secret: session.client_secret });
  } catch (error) {
    res.status(502).json({ error: "Payment provider is unavailable; try again shortly." });
  }
});

app.get("/api/checkout/session-status", async (req, res) => {
  try {
    const session = await stripe.checkout.sessions.retrieve(String(req.query.session_id));
    res.json({ status: session.status, payment_status: session.payment_status });
  } catch (error) {
    res.status(error.statusCode === 404 ? 404 : 502).json({ error: "Could not read the session." });
  }
});

const port = Number(process.env.PORT || 8090);
app.listen(port, "127.0.0.1", () => console.log(`express example listening on ${port}`));
