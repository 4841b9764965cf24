-- POST an empty JSON object, as the checkout page does when it asks for a session.
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
