"""Bot Framework authentication, both ways.

Inbound, the channel signs each activity with a JWT (``Authorization: Bearer``) that is checked against
the keys published under the OpenID metadata's ``jwks_uri``: RS256 only, issuer
``https://api.botframework.com``, audience = the bot's app id, 5 minutes of clock skew, the key's
``endorsements`` naming the activity's ``channelId``, and the ``serviceurl`` claim equal to the activity's
``serviceUrl``. Outbound, the bot gets its own token from the login service by client credentials.
Both follow "Authentication with the Bot Connector API"
(https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import orjson

from botkit.core.errors import RequestRejected, SendError, Unauthorized
from botkit.http import HttpClient

log = logging.getLogger("botkit.adapters.teams")

ISSUER = "https://api.botframework.com"
ALGORITHMS = frozenset({"RS256"})
LEEWAY = 300
REMEMBER_FOR = 60.0
"""Seconds a verified token is taken as verified again without its RS256 check (the Bot Framework sends one
token with many activities, and ``check_headers`` then ``verify`` both check it)."""
REMEMBERED = 256
"""Verified tokens remembered at most (the least recently used go first)."""
SCOPE = "https://api.botframework.com/.default"
DEFAULT_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
TENANT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"

Clock = Callable[[], float]


class KeysUnavailable(RequestRejected):
    """The signing keys could not be fetched: the request cannot be checked now (503, try again)."""

    status = 503


@dataclass(frozen=True, slots=True)
class SigningKey:
    key: Any
    endorsements: frozenset[str] | None
    """The channel ids this key may sign for; None when the key names none (no restriction)."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: dict[str, Any]
    endorsements: frozenset[str] | None

    def check_activity(self, service_url: str, channel_id: str | None) -> None:
        """The token must be for this activity: its ``serviceurl`` and, if the key is endorsed, its channel."""
        claimed = self.claims.get("serviceurl", self.claims.get("serviceUrl"))
        if not isinstance(claimed, str) or claimed != service_url:
            raise Unauthorized("the token's serviceurl claim does not match the activity's serviceUrl")
        if self.endorsements is not None and channel_id and channel_id not in self.endorsements:
            raise Unauthorized(f"the signing key is not endorsed for channel {channel_id!r}")


class SigningKeys:
    """The channel's signing keys, cached for ``max_age``.

    A token naming an unknown ``kid`` refetches them (keys rotate), but at most once per
    ``refetch_floor`` seconds, so that tokens with made-up kids cannot make us hammer the endpoint.
    A failed fetch is not retried for ``failure_backoff`` seconds; meanwhile the old keys stay in use.
    """

    def __init__(
        self,
        http: HttpClient,
        metadata_url: str,
        *,
        clock: Clock = time.monotonic,
        max_age: float = 24 * 3600.0,
        refetch_floor: float = 300.0,
        failure_backoff: float = 10.0,
    ) -> None:
        self.http = http
        self.metadata_url = metadata_url
        self.clock = clock
        self.max_age = max_age
        self.refetch_floor = refetch_floor
        self.failure_backoff = failure_backoff
        self.algorithms: frozenset[str] = ALGORITHMS
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None
        self._refetched_at: float | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> SigningKey | None:
        key = self._keys.get(kid)
        if key is not None and self._fresh(self.clock()):
            return key
        async with self._lock:
            now = self.clock()
            if self._backing_off(now):
                pass
            elif not self._fresh(now):
                await self._fetch(now)
            elif kid not in self._keys and self._may_refetch(now):
                self._refetched_at = now
                log.info("teams: unknown signing key %r; refetching the keys", kid)
                await self._fetch(now)
            if not self._keys and self._failed_at is not None:
                raise KeysUnavailable("the Bot Framework signing keys could not be fetched")
            return self._keys.get(kid)

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self.max_age

    def _may_refetch(self, now: float) -> bool:
        return self._refetched_at is None or now - self._refetched_at >= self.refetch_floor

    def _backing_off(self, now: float) -> bool:
        return self._failed_at is not None and now - self._failed_at < self.failure_backoff

    async def _fetch(self, now: float) -> None:
        try:
            metadata = _json_object(await self.http.request("GET", self.metadata_url), "the OpenID metadata")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not jwks_uri:
                raise ValueError("the OpenID metadata has no jwks_uri")
            keys = _parse_jwks(_json_object(await self.http.request("GET", jwks_uri), "the JWKS"))
        except (SendError, ValueError) as exc:
            self._failed_at = now
            log.error("teams: fetching the signing keys from %s failed: %s", self.metadata_url, exc)
            return
        supported = metadata.get("id_token_signing_alg_values_supported")
        self.algorithms = ALGORITHMS & set(supported) if isinstance(supported, list) else ALGORITHMS
        self._keys = keys
        self._fetched_at = now
        self._failed_at = None


class ChannelTokenVerifier:
    """Checks the JWT the Bot Framework channel sends with each activity. Everything about it needs only
    the header, so a webhook checks it before reading the body; a token verified less than
    ``REMEMBER_FOR`` seconds ago (and not expired) is not checked again."""

    def __init__(self, keys: SigningKeys, app_id: str, *, clock: Clock = time.time) -> None:
        self.keys = keys
        self.app_id = app_id
        self.clock = clock
        self._verified: OrderedDict[str, tuple[float, VerifiedToken]] = OrderedDict()

    async def verify(self, authorization: str | None) -> VerifiedToken:
        """The token's claims; Unauthorized for anything short of a valid channel token for this bot."""
        token = _bearer(authorization)
        remembered = self._verified.get(token)
        if remembered is not None and self.clock() < remembered[0]:
            self._verified.move_to_end(token)
            return remembered[1]
        verified = await self._verify(token)
        self._remember(token, verified)
        return verified

    def _remember(self, token: str, verified: VerifiedToken) -> None:
        expiry = verified.claims.get("exp")
        if isinstance(expiry, bool) or not isinstance(expiry, (int, float)):
            return
        self._verified[token] = (min(self.clock() + REMEMBER_FOR, expiry + LEEWAY), verified)
        self._verified.move_to_end(token)
        while len(self._verified) > REMEMBERED:
            self._verified.popitem(last=False)

    async def _verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthorized("the bearer token is not a JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise Unauthorized(f"token algorithm {alg!r} is not accepted (RS256 only)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token names no signing key (kid)")
        key = await self.keys.get(kid)
        if key is None:
            raise Unauthorized(f"the token is signed with an unknown key {kid!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=sorted(self.keys.algorithms),
                audience=self.app_id,
                issuer=ISSUER,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:  # the token is the caller's: any failure is a 401
            raise Unauthorized(f"token rejected: {exc}") from None
        return VerifiedToken(claims, key.endorsements)


class BotToken:
    """The bot's access token for the Bot Connector (OAuth 2.0 client credentials).

    Cached until shortly before it expires; callers that need it while it is being fetched wait for
    that one fetch instead of starting their own.
    """

    margin = 300.0
    """Renew this many seconds before expiry (at most a tenth of the token's lifetime)."""

    def __init__(self, http: HttpClient, url: str, app_id: str, app_password: str, *, clock: Clock = time.time) -> None:
        self.http = http
        self.url = url
        self.app_id = app_id
        self.app_password = app_password
        self.clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token is not None and self.clock() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the token (the connector refused it): the next send fetches a new one."""
        self._token = None

    async def _fetch(self) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.app_id,
            "client_secret": self.app_password,
            "scope": SCOPE,
        }
        answer = await self.http.request("POST", self.url, data=form)
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise SendError("POST", self.url, 200, answer, "the token endpoint's answer has no access_token")
        lifetime = _seconds(answer.get("expires_in"), default=3600.0)
        self._token = token
        self._renew_at = self.clock() + lifetime - min(self.margin, lifetime / 10)


def token_url(settings: Mapping[str, Any]) -> str:
    """``token_url`` if set, else the tenant's endpoint for a single-tenant bot, else Bot Framework's."""
    if settings.get("token_url"):
        return str(settings["token_url"])
    if settings.get("tenant_id"):
        return TENANT_TOKEN_URL.format(tenant=settings["tenant_id"])
    return DEFAULT_TOKEN_URL


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header is not a Bearer token")
    return token.strip()


def _json_object(answer: Any, what: str) -> dict[str, Any]:
    if isinstance(answer, (str, bytes)):
        try:
            answer = orjson.loads(answer)
        except orjson.JSONDecodeError:
            raise ValueError(f"{what} is not JSON") from None
    if not isinstance(answer, dict):
        raise ValueError(f"{what} is not a JSON object")
    return answer


def _parse_jwks(document: dict[str, Any]) -> dict[str, SigningKey]:
    keys: dict[str, SigningKey] = {}
    for entry in document.get("keys") or []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
            continue
        try:
            public_key = jwt.PyJWK(entry, algorithm="RS256").key
        except jwt.PyJWTError as exc:
            log.warning("teams: skipping signing key %r: %s", entry.get("kid"), exc)
            continue
        endorsements = entry.get("endorsements")
        allowed = frozenset(e for e in endorsements if isinstance(e, str)) if isinstance(endorsements, list) and endorsements else None
        keys[entry["kid"]] = SigningKey(public_key, allowed)
    if not keys:
        raise ValueError("the JWKS holds no usable RSA key")
    return keys


def _seconds(value: Any, *, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default
