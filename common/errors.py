"""Exceptions that carry the HTTP answer a person can act on.

Handlers raise these; `common.http.endpoint` turns them into JSON responses,
so no handler formats an error by hand and every error has the same shape.
"""


class HttpError(Exception):
    """A request we refuse or cannot serve, with the status and message to send."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class SettingError(HttpError):
    """A setting is missing or invalid: the operator must fix the deployment.

    The message names the setting and never quotes its value, which may be a
    secret.
    """

    def __init__(self, name: str, problem: str):
        super().__init__(500, f"Server misconfigured: {name} {problem}.")
        self.name = name
