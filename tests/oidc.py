"""A real OpenID Connect provider for the identity tests: PyPI's oidc-provider-mock on 127.0.0.1,
with predefined users in two teams and an admin. `token(user)` signs that user in through the
provider's own authorization-code flow and returns the RS256 ID token it issued."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse

import httpx

from tests.conftest import free_port

AUDIENCE = "docstack"  # the client id the app signs in with: ID tokens are issued for it
REDIRECT = "http://127.0.0.1:1/callback"  # never followed: the code is read from the redirect itself

# Three users in two teams and an admin (the attack tests' cast).
USERS = {
    "alice": {"name": "Alice HR", "groups": ["hr"], "roles": ["member"]},
    "hana": {"name": "Hana HR", "groups": ["hr"], "roles": ["member"]},
    "bob": {"name": "Bob Eng", "groups": ["engineering"], "roles": ["member"]},
    "root": {"name": "Ada Admin", "groups": ["it"], "roles": ["admin"]},
}


class OidcProvider:
    def __init__(self, token_max_age: int = 3600):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.token_max_age = token_max_age
        self._process: subprocess.Popen | None = None

    def start(self) -> OidcProvider:
        claims = [arg for sub, extra in USERS.items()
                  for arg in ("--user-claims", json.dumps({"sub": sub, "email": f"{sub}@example.com", **extra}))]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port),
             "--token-max-age", str(self.token_max_age), *claims],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the OIDC provider did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def token(self, user: str, audience: str = AUDIENCE) -> str:
        """The ID token the provider issues when `user` signs in to client `audience`."""
        query = {"client_id": audience, "redirect_uri": REDIRECT, "response_type": "code",
                 "scope": "openid profile email", "state": "s"}
        with httpx.Client(base_url=self.issuer, timeout=10) as http:
            redirect = http.post("/oauth2/authorize", params=query, data={"sub": user})
            code = urllib.parse.parse_qs(urllib.parse.urlparse(redirect.headers["location"]).query)["code"][0]
            tokens = http.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                                       "redirect_uri": REDIRECT, "client_id": audience,
                                                       "client_secret": "secret"})
            tokens.raise_for_status()
            return tokens.json()["id_token"]
