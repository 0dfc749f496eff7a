"""Session tokens and signed logins of the web channel.

A token is ``<session id>.<43 url-safe characters>``: 256 random bits after the session id, so the
session is found with one read and the secret is checked against the SHA-256 the session keeps. Only
the hash is stored, so a copy of the store lets nobody in. A fast hash is enough: the secret is random,
not a password, so there is nothing to guess from it.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from botkit.core.errors import ConfigError, Unauthorized

SECRET_BYTES = 32
MIN_HMAC_KEY_BYTES = 32
MAX_USER_ID = 200
_TOKEN = re.compile(
    r"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})\.[A-Za-z0-9_-]{43}")
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def new_session_id() -> str:
    return str(uuid.uuid4())


def mint(session_id: str) -> str:
    return f"{session_id}.{secrets.token_urlsafe(SECRET_BYTES)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_of(token: str) -> str | None:
    """The session id a well-formed token names, or None."""
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def same_hash(stored: Any, presented: str) -> bool:
    """Constant-time comparison of the hash a session keeps with a presented token's hash."""
    return isinstance(stored, str) and hmac.compare_digest(stored.encode(), presented.encode())


def bearer(header: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer …`` header."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


class LoginVerifier:
    """Checks the JWT a site's own login issued: signature (HS256 with a shared secret, or RS/ES with the
    site's public key), ``exp`` and ``sub`` required, ``aud``/``iss`` when configured. ``exp`` and ``nbf``
    are judged by the bot's clock."""

    def __init__(self, key: Any, algorithm: str, audience: str | None, issuer: str | None,
                 clock: Callable[[], float]) -> None:
        self.key = key
        self.algorithm = algorithm
        self.audience = audience
        self.issuer = issuer
        self.clock = clock
        self.required = ["exp", "sub"] + (["aud"] if audience else []) + (["iss"] if issuer else [])

    @classmethod
    def from_settings(cls, channel: str, settings: Mapping[str, Any], clock: Callable[[], float]) -> LoginVerifier | None:
        """None when ``jwt_key`` is not set; ConfigError for a key that cannot verify anything."""
        raw = settings.get("jwt_key")
        for name in ("jwt_audience", "jwt_issuer"):
            if settings.get(name) is not None and not isinstance(settings[name], str):
                raise ConfigError(f"channels.{channel}.{name}", "must be a string or None")
        if raw is None:
            return None
        setting = f"channels.{channel}.jwt_key"
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(setting, "must be the HS256 secret or the PEM public key that signs your site's logins")
        key, algorithm = _verification_key(raw.strip(), setting)
        return cls(key, algorithm, settings.get("jwt_audience"), settings.get("jwt_issuer"), clock)

    def user_id(self, login: str) -> str:
        """The ``sub`` of a valid login; Unauthorized says what is wrong with any other."""
        try:
            claims = jwt.decode(
                login, self.key, algorithms=[self.algorithm], audience=self.audience, issuer=self.issuer,
                options={"require": self.required, "verify_exp": False, "verify_nbf": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"login rejected: {exc}") from None
        now = self.clock()
        if not _is_time(claims["exp"]) or claims["exp"] <= now:
            raise Unauthorized("login rejected: it has expired (exp)")
        if "nbf" in claims and (not _is_time(claims["nbf"]) or claims["nbf"] > now):
            raise Unauthorized("login rejected: it is not valid yet (nbf)")
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_USER_ID:
            raise Unauthorized(f"login rejected: sub must be a user id of 1 to {MAX_USER_ID} characters")
        return subject


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _verification_key(raw: str, setting: str) -> tuple[Any, str]:
    if not raw.startswith("-----BEGIN"):
        if len(raw.encode()) < MIN_HMAC_KEY_BYTES:
            raise ConfigError(setting, f"an HS256 secret must be at least {MIN_HMAC_KEY_BYTES} bytes; "
                                       "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return raw, "HS256"
    if "PRIVATE KEY" in raw.split("\n", 1)[0]:
        raise ConfigError(setting, "is a private key; give the bot the public key (the site signs, the bot only verifies)")
    public: Any
    try:
        if raw.startswith("-----BEGIN CERTIFICATE"):
            public = x509.load_pem_x509_certificate(raw.encode()).public_key()
        else:
            public = serialization.load_pem_public_key(raw.encode())
    except ValueError as exc:
        raise ConfigError(setting, f"is not a PEM public key or certificate ({exc})") from None
    if isinstance(public, rsa.RSAPublicKey):
        return public, "RS256"
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name in _CURVES:
        return public, _CURVES[public.curve.name]
    raise ConfigError(setting, "use an RSA key (RS256), a P-256/384/521 key (ES256/384/512) or an HS256 secret")
