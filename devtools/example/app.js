// The example frontend: what the real page does, in plain JavaScript.
//
// 1. POST /api/checkout/embedded-session with an Idempotency-Key header. That
//    custom header makes the request "preflighted": the browser first asks
//    the API (OPTIONS) whether this origin may send it, so ALLOWED_ORIGINS is
//    really exercised.
// 2. With a publishable key: mount Stripe's Embedded Checkout
//    (createEmbeddedCheckoutPage, the name since API 2026-03-25.dahlia).
//    Without one (the Stripe stand-in): show the session id and the command
//    that completes it.
// 3. Poll GET /api/checkout/session-status and show its `outcome`:
//    open (not paid: on the return page, offer the form again), processing
//    (a delayed method; poll with backoff), paid, failed (offer a new
//    session), expired, refunded. Polling stops on every terminal outcome.
//
// Stripe sends the buyer back to FRONTEND_URL + CHECKOUT_RETURN_PATH with
// ?session_id=…; the run command serves this page there too, so a returning
// buyer sees the outcome of that session.
"use strict";

const config = Object.assign(
  {
    apiBase: "http://localhost:8080",
    publishableKey: "",
    stripeJsUrl: "https://js.stripe.com/endive/stripe.js",
    simulateCommand: "python -m devtools.simulate pay",
    pollIntervalMs: 2000,
    maxPollIntervalMs: 15000,
    pollTimeoutMs: 30 * 60 * 1000,
  },
  window.CHECKOUT_CONFIG || {},
);
const apiBase = config.apiBase.replace(/\/+$/, "");

const $ = (id) => document.getElementById(id);

class PageError extends Error {
  constructor(message, kind) {
    super(message);
    this.kind = kind;
  }
}

function showStatus(state, text) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = text;
}

function showError(error) {
  const box = $("error");
  box.dataset.kind = error.kind || "page";
  box.textContent = error.message;
  box.hidden = false;
  showStatus("error", "");
}

function idempotencyKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A fetch that rejects (rather than answering with a status) means the
// request never got a readable answer: API down, or CORS refused this origin.
async function callApi(path, init) {
  let response;
  try {
    response = await fetch(apiBase + path, init);
  } catch (_) {
    throw new PageError(
      `Network or CORS error: no readable answer from the API at ${apiBase}. ` +
        `Is it running, and does ALLOWED_ORIGINS include ${location.origin}?`,
      "network",
    );
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new PageError(body.error || `The API answered ${response.status}.`, "api");
    error.status = response.status;
    throw error;
  }
  return body;
}

async function createSession() {
  const body = await callApi("/api/checkout/embedded-session", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": idempotencyKey() },
    body: JSON.stringify({ metadata: { source: "example-page" } }),
  });
  return body.client_secret;
}

// A Checkout Session's client secret is "<session id>_secret_<random>".
function sessionIdFrom(clientSecret) {
  return clientSecret.split("_secret_")[0];
}

// What each outcome shows, and whether polling stops there.
const OUTCOMES = {
  open: ["Waiting for payment…", false],
  processing: ["Processing: your bank is confirming the payment. This page updates by itself.", false],
  paid: ["Paid. Thank you!", true],
  failed: ["The payment failed. No money was taken; you can try again.", true],
  expired: ["Expired: this checkout can no longer be paid.", true],
  refunded: ["Refunded: the payment was returned to you.", true],
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Poll until a terminal outcome; `returning` is true on the page Stripe sent the buyer back to.
async function pollStatus(sessionId, returning = false) {
  const started = Date.now();
  const path = "/api/checkout/session-status?session_id=" + encodeURIComponent(sessionId);
  let interval = config.pollIntervalMs;
  for (;;) {
    try {
      const { outcome } = await callApi(path);
      const [text, terminal] = OUTCOMES[outcome] || OUTCOMES.open;
      showStatus(outcome, text);
      $("error").hidden = true;
      if (outcome === "failed") offerRetry();
      if (outcome === "open" && returning) {
        // Stripe's guidance: back on the return page still open means the payment
        // failed or was cancelled in the form; show the form again.
        showStatus("open", "Not paid yet: the payment did not go through.");
        offerRetry();
        return;
      }
      if (terminal) return;
      // A delayed payment can take days: back off, up to a limit.
      interval = outcome === "processing" ? Math.min(interval * 1.5, config.maxPollIntervalMs) : config.pollIntervalMs;
    } catch (error) {
      // Busy or briefly unreachable: keep trying. Anything else will not get better.
      if (!(error.kind === "network" || error.status === 429 || error.status >= 500)) {
        showError(error);
        return;
      }
    }
    if (Date.now() - started > config.pollTimeoutMs) {
      showStatus("stale", "Stopped checking; reload the page to check again.");
      return;
    }
    await sleep(interval);
  }
}

function offerRetry() {
  $("retry-button").hidden = false;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new PageError(`Could not load Stripe.js from ${src}.`, "network"));
    document.head.append(script);
  });
}

async function payWithEmbeddedCheckout() {
  if (!window.Stripe) await loadScript(config.stripeJsUrl);
  const stripe = window.Stripe(config.publishableKey);
  const checkout = await stripe.createEmbeddedCheckoutPage({
    fetchClientSecret: async () => {
      const clientSecret = await createSession();
      pollStatus(sessionIdFrom(clientSecret));
      return clientSecret;
    },
  });
  checkout.mount("#checkout");
}

async function payWithSimulatedCheckout() {
  const sessionId = sessionIdFrom(await createSession());
  $("session-id").textContent = sessionId;
  $("simulate-hint").textContent = `${config.simulateCommand} ${sessionId}`;
  $("simulated").hidden = false;
  await pollStatus(sessionId);
}

async function pay() {
  $("pay-button").disabled = true;
  $("retry-button").hidden = true;
  $("checkout").replaceChildren();
  $("error").hidden = true;
  showStatus("creating", "Creating a checkout session…");
  try {
    if (config.publishableKey) {
      await payWithEmbeddedCheckout();
    } else {
      await payWithSimulatedCheckout();
    }
  } catch (error) {
    showError(error);
    $("pay-button").disabled = false;
  }
}

function start() {
  $("retry-button").addEventListener("click", pay);
  const returning = new URLSearchParams(location.search).get("session_id");
  if (returning) {
    $("pay-button").hidden = true;
    pollStatus(returning, true);
    return;
  }
  $("pay-button").addEventListener("click", pay);
}

start();
