"""`docstack login`: sign in on the command line the way cloud CLIs do. The browser goes to the
provider's own sign-in page (authorization-code flow with PKCE), the provider sends it back to a
one-shot listener on 127.0.0.1, and the ID token it issues is checked and kept in
`$DOCSTACK_HOME/token` (mode 0600), where the CLI finds it when DOCSTACK_TOKEN is not set."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import httpx

from docstack.access.identity import Principal, TokenVerifier
from docstack.console import AuthError
from docstack.oidc import provider_metadata

CALLBACK_PATH = "/callback"


def token_file(home: Path) -> Path:
    return home / "token"


def saved_token(home: Path) -> str | None:
    """The ID token `docstack login` kept, if any."""
    try:
        return token_file(home).read_text().strip() or None
    except OSError:
        return None


def save_token(home: Path, token: str) -> Path:
    path = token_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others
    with os.fdopen(descriptor, "w") as out:
        out.write(token)
    return path


class _Callback(http.server.BaseHTTPRequestHandler):
    """Receives the provider's redirect once and says so in the browser."""

    received: dict[str, str] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urllib.parse.urlparse(self.path)
        if url.path != CALLBACK_PATH:
            self.send_error(404)
            return
        self.server.received = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write("docstack: signed in, you can close this tab.\n".encode())

    def log_message(self, *args) -> None:  # the terminal shows docstack's own lines only
        pass


def login(verifier: TokenVerifier, client_id: str, client_secret: str | None, scopes: str,
          open_url: Callable[[str], None], timeout: float = 300.0) -> Principal:
    """Sign in through the provider's page; returns the signed-in user, token included."""
    metadata = provider_metadata(verifier.issuer)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Callback)
    server.received = {}
    server.timeout = timeout
    redirect = f"http://127.0.0.1:{server.server_port}{CALLBACK_PATH}"
    verifier_code = secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(16)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier_code.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": client_id, "redirect_uri": redirect, "response_type": "code", "scope": scopes,
             "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
    waiting = threading.Thread(target=server.handle_request, daemon=True)
    waiting.start()
    open_url(f"{metadata['authorization_endpoint']}?{urllib.parse.urlencode(query)}")
    waiting.join(timeout)
    server.server_close()
    received = server.received
    if not received:
        raise AuthError(f"no sign-in within {timeout:.0f} s; run `docstack login` again")
    if received.get("state") != state:
        raise AuthError("sign-in refused: the provider's answer does not belong to this login (state differs)")
    if "code" not in received:
        raise AuthError(f"sign-in refused by the provider: {received.get('error_description') or received.get('error')}")
    form = {"grant_type": "authorization_code", "code": received["code"], "redirect_uri": redirect,
            "client_id": client_id, "code_verifier": verifier_code}
    if client_secret:
        form["client_secret"] = client_secret
    answer = httpx.post(metadata["token_endpoint"], data=form, timeout=30)
    try:
        issued = answer.json()
    except ValueError:
        issued = {}
    if answer.status_code != 200 or "id_token" not in issued:
        raise AuthError(f"the provider did not issue an ID token ({answer.status_code}: {answer.text[:200]})")
    return verifier.verify(issued["id_token"])
