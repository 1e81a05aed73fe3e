"""The OpenID Connect provider's published configuration (its endpoints, where its keys are),
read by the token check (access/), `docstack login` and the on-prem stack's run config (stack/)."""

from __future__ import annotations

import json
import urllib.request

from docstack.console import AuthError


def provider_metadata(issuer: str) -> dict:
    """The provider's `/.well-known/openid-configuration`."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read the identity provider's configuration at {url} ({exc}); "
                        "check DOCSTACK_OIDC_ISSUER") from exc


def keys_url(issuer: str, configured: str | None = None) -> str:
    """Where the provider publishes its signing keys (JWKS): `configured`, else its discovery's."""
    if configured:
        return configured
    metadata = provider_metadata(issuer)
    if "jwks_uri" not in metadata:
        raise AuthError(f"the identity provider {issuer} publishes no keys (jwks_uri); set DOCSTACK_OIDC_JWKS_URL")
    return metadata["jwks_uri"]
