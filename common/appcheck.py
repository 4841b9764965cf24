"""Firebase App Check: does this request come from our own app?

The page gets a short-lived token from App Check (`getToken()` in the
Firebase JS SDK, attested by reCAPTCHA Enterprise or another provider) and
sends it as `X-Firebase-AppCheck`. With APP_CHECK_PROJECT_NUMBER set, create
(and status with APP_CHECK_ON_STATUS=true) accepts a request only with a
token that is, as Firebase specifies for verifying without its Admin SDK:

- a JWT signed with RS256 by a key in App Check's public JWKS (`kid` header),
- issued by https://firebaseappcheck.googleapis.com/PROJECT_NUMBER,
- for an audience that includes projects/PROJECT_NUMBER,
- not expired, and naming the app (`sub`, its Firebase app id).

Anything else is `InvalidToken` (401). If the key set cannot be fetched, the
caller is not at fault and gets CheckUnavailable (503, retry), not a 401
that would send a working app to fetch new tokens in vain.

The keys come through PyJWT's PyJWKClient: cached for 6 hours (what
Firebase's own Admin SDK does), refetched once for an unknown `kid` but at
most once per REFRESH_COOLDOWN_SECONDS (so forged `kid`s cannot make us
hammer the JWKS endpoint), each fetch bounded by FETCH_TIMEOUT_SECONDS. The
fetch is blocking urllib, so it runs in a thread, one at a time; a key
already cached is found without leaving the event loop. After a failed fetch
requests are answered 503 at once for RETRY_FETCH_AFTER_SECONDS, rather than
each waiting in turn for another fetch to fail. PyJWT and
cryptography are imported only when App Check is on (~22 ms of cold start).
"""

from __future__ import annotations

import asyncio
import time

from common.errors import CheckUnavailable, Unauthenticated
from common.http import note

HEADER = "X-Firebase-AppCheck"
ISSUER_PREFIX = "https://firebaseappcheck.googleapis.com/"
KEYS_LIFESPAN_SECONDS = 6 * 3600
FETCH_TIMEOUT_SECONDS = 3.0
REFRESH_COOLDOWN_SECONDS = 60.0
RETRY_FETCH_AFTER_SECONDS = 5
# Clock difference tolerated on exp and iat: a token App Check has just issued
# must not look issued in the future to an instance whose clock is a little ahead.
LEEWAY_SECONDS = 30
# App Check tokens are a few hundred bytes; a huge header is refused before it is parsed.
MAX_TOKEN_CHARS = 4096


class InvalidToken(Unauthenticated):
    """The App Check token is missing or not one of ours; `reason` is for the log line."""

    def __init__(self, reason: str):
        if reason == "missing":
            message = f"Missing {HEADER} header: send an App Check token."
        else:
            message = "Invalid App Check token; get a fresh one and retry."
        super().__init__(message)
        self.reason = reason


class AppCheck:
    """Verifies App Check tokens for one Firebase project."""

    def __init__(self, project_number: str, jwks_url: str):
        import jwt  # with cryptography: only instances that verify tokens pay for the import

        self._jwt = jwt
        self.audience = f"projects/{project_number}"
        self.issuer = ISSUER_PREFIX + project_number
        self._jwks = jwt.PyJWKClient(
            jwks_url,
            lifespan=KEYS_LIFESPAN_SECONDS,
            timeout=FETCH_TIMEOUT_SECONDS,
            cooldown_duration=REFRESH_COOLDOWN_SECONDS,
        )
        self._fetching = asyncio.Lock()
        self._failed_at = float("-inf")  # monotonic time of the last failed fetch

    async def verify(self, request) -> str:
        """The app id (`sub`) of the request's valid token; InvalidToken or CheckUnavailable otherwise."""
        try:
            return await self._verify(request.headers.get(HEADER))
        except InvalidToken as error:
            note(request, app_check=error.reason)
            raise
        except CheckUnavailable:
            note(request, app_check="keys_unavailable")
            raise

    async def _verify(self, token: str | None) -> str:
        jwt = self._jwt
        if not token:
            raise InvalidToken("missing")
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("too_long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed") from None
        kid = header.get("kid")
        # Checked before any key is looked up: `alg: none` or HS256 never reaches a key.
        if header.get("alg") != "RS256" or header.get("typ") != "JWT" or not isinstance(kid, str):
            raise InvalidToken("header")
        key = self._cached_key(kid)
        if key is None:
            key = await self._fetched_key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            raise InvalidToken(error.__class__.__name__) from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidToken("subject")
        return claims["sub"]

    def _cached_key(self, kid: str):
        """The key for `kid` from the cached key set, without I/O; None if not cached or expired."""
        cache = self._jwks.jwk_set_cache
        key_set = cache.get() if cache is not None else None
        if key_set is None:
            return None
        for key in key_set.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    async def _fetched_key(self, kid: str):
        jwt = self._jwt
        async with self._fetching:  # one fetch at a time; those waiting then find the keys cached
            key = self._cached_key(kid)
            if key is not None:
                return key
            if time.monotonic() - self._failed_at < RETRY_FETCH_AFTER_SECONDS:
                raise CheckUnavailable("App Check keys could not be fetched", RETRY_FETCH_AFTER_SECONDS)
            try:
                async with asyncio.timeout(FETCH_TIMEOUT_SECONDS + 1):
                    return await asyncio.to_thread(self._jwks.get_signing_key, kid)
            except jwt.PyJWKClientError as error:
                # Not a failed fetch: the keys are at hand and none is this token's.
                if not isinstance(error, jwt.PyJWKClientConnectionError) and self._cached_key_set_exists():
                    raise InvalidToken("unknown_key") from None
                self._failed_at = time.monotonic()
                raise CheckUnavailable("App Check keys could not be fetched", RETRY_FETCH_AFTER_SECONDS) from None
            except (jwt.PyJWKSetError, ValueError, TimeoutError):
                self._failed_at = time.monotonic()
                raise CheckUnavailable("App Check keys could not be read", RETRY_FETCH_AFTER_SECONDS) from None

    def _cached_key_set_exists(self) -> bool:
        cache = self._jwks.jwk_set_cache
        return cache is not None and cache.get() is not None
