"""Identities: the signed-in person behind a request, read from an OIDC ID token (a JWT) that the
provider signed. Off by default: on a laptop everything runs as LOCAL, an admin."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import jwt

from docstack.console import AuthError
from docstack.oidc import keys_url

ADMIN_ROLE = "admin"
# Asymmetric algorithms only: "none" and HS256 (whose key would be the public key) are refused.
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class Principal:
    """A user, their teams and roles; `token` is forwarded to the stack on their behalf."""

    user: str
    teams: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    name: str = ""
    token: str | None = field(default=None, repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    @classmethod
    def from_claims(cls, claims: Mapping, teams_claim: str = "groups", roles_claim: str = "roles",
                    token: str | None = None) -> Principal:
        return cls(str(claims["sub"]), _names(claims.get(teams_claim)), _names(claims.get(roles_claim)),
                   str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or claims["sub"]),
                   token)

    def to_json(self) -> dict:
        return {"user": self.user, "name": self.name, "teams": sorted(self.teams), "roles": sorted(self.roles)}


LOCAL = Principal("local", roles=frozenset({ADMIN_ROLE}), name="local user")


def _names(value) -> frozenset[str]:
    """A claim that lists names: a list, or one space- or comma-separated string (providers differ)."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return frozenset(str(v) for v in value)


class TokenVerifier:
    """Checks an ID token's signature against the provider's published keys (JWKS), its issuer,
    audience and expiry; the keys are fetched once and again when a token names an unknown key."""

    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None, teams_claim: str = "groups",
                 roles_claim: str = "roles", leeway: float = 30.0):
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks_url = jwks_url
        self.teams_claim = teams_claim
        self.roles_claim = roles_claim
        self.leeway = leeway

    @cached_property
    def _keys(self) -> jwt.PyJWKClient:
        return jwt.PyJWKClient(keys_url(self.issuer, self.jwks_url), cache_keys=True, lifespan=3600)

    def verify(self, token: str | None) -> Principal:
        if not token or not token.strip():
            raise AuthError("no token: sign in and set DOCSTACK_TOKEN to your ID token")
        token = token.strip().removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"token refused: not a JWT ({exc})") from exc
        if header.get("alg") not in ALGORITHMS:
            raise AuthError(f"token refused: algorithm '{header.get('alg')}' is not accepted")
        try:
            key = self._keys.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"token refused: no key of the identity provider signed it ({exc})") from exc
        try:
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway, options={"require": ["exp", "iss", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token refused: it has expired; sign in again") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(f"token refused: it was issued for another audience (expected '{self.audience}')") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError(f"token refused: it was issued by another provider (expected '{self.issuer}')") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"token refused: {exc}") from exc
        return Principal.from_claims(claims, self.teams_claim, self.roles_claim, token)


def seconds_left(principal: Principal) -> float | None:
    """How long the principal's token stays valid (None: no token, as for LOCAL)."""
    if not principal.token:
        return None
    exp = jwt.decode(principal.token, options={"verify_signature": False}).get("exp")
    return None if exp is None else exp - time.time()
