"""The web app's sign-in settings. With identity on, the web app signs people in through Streamlit's
own `st.login`, which reads its OpenID Connect client from the `[auth]` section of a secrets file.
`docstack up` writes that file from docstack's settings, readable by its owner only, under the run
folder (never into the repository), and starts Streamlit with `--secrets.files` pointing at it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from docstack.console import DocstackError
from docstack.settings import Settings

# Only the ID token is needed: the app verifies it and forwards it to the stack as the user's.
EXPOSED_TOKENS = ["id"]


def secrets_file(settings: Settings) -> Path:
    return settings.run_dir / "ui-secrets.toml"


def redirect_uri(settings: Settings) -> str:
    """Where the provider sends a signed-in person back to; Streamlit answers at /oauth2callback."""
    if settings.oidc_redirect_uri:
        return settings.oidc_redirect_uri
    if settings.host in ("0.0.0.0", "::"):  # listening everywhere says nothing of the address people open
        raise DocstackError("the web app listens on all addresses: set DOCSTACK_OIDC_REDIRECT_URI to the address "
                            "people open it at, followed by /oauth2callback")
    return f"{settings.ui_url}/oauth2callback"


def write_secrets(settings: Settings) -> Path:
    """The `[auth]` section for Streamlit, rewritten at every start so that it follows the settings."""
    if settings.oidc_client_secret is None:
        raise DocstackError(f"the web app signs in to {settings.oidc_issuer} as client '{settings.oidc_audience}': "
                            "set DOCSTACK_OIDC_CLIENT_SECRET to that client's secret")
    auth = {
        "redirect_uri": redirect_uri(settings),
        "cookie_secret": _cookie_secret(settings),
        "client_id": settings.oidc_audience,
        "client_secret": settings.oidc_client_secret.get_secret_value(),
        "server_metadata_url": settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        "expose_tokens": EXPOSED_TOKENS,
    }
    # JSON strings and lists are valid TOML values (basic strings with the same escapes).
    lines = ["[auth]", *(f"{key} = {json.dumps(value)}" for key, value in auth.items()),
             f"client_kwargs = {{ scope = {json.dumps(settings.oidc_scopes)} }}"]
    path = secrets_file(settings)
    _write_private(path, "\n".join(lines) + "\n")
    return path


def _cookie_secret(settings: Settings) -> str:
    """Signs the sign-in cookies (and Streamlit's sign-in state between /auth/login and the
    callback). Made once and kept, so that people stay signed in across restarts and app replicas
    sharing one DOCSTACK_HOME accept each other's cookies; DOCSTACK_UI_COOKIE_SECRET for replicas
    that do not share it."""
    if settings.ui_cookie_secret is not None:
        return settings.ui_cookie_secret.get_secret_value()
    path = settings.run_dir / "ui-cookie-secret"
    try:
        _write_private(path, secrets.token_urlsafe(32), exclusive=True)
    except FileExistsError:
        pass
    return path.read_text().strip()


def _write_private(path: Path, text: str, exclusive: bool = False) -> None:
    """Write `text` whole to a file only its owner may read (0600 from the start, not chmod-ed
    after). Replicas sharing the folder may write at once: each writes its own copy and moves it in;
    with `exclusive`, the first one in stays (FileExistsError for the others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    try:
        if exclusive:
            os.link(staging, path)
        else:
            os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
