"""The web app's sign-in without a browser: the sign-in settings `docstack up` writes for Streamlit,
and the pages through Streamlit's AppTest with real ID tokens from the local OIDC provider
(tests/oidc.py) verified against its keys. The browser walks the provider's own page in
tests/test_browser_login.py."""

from __future__ import annotations

import stat
import tomllib

import pytest

from docstack import DocstackError, Settings
from docstack.stack import profiles, ui_auth
from tests.conftest import ROOT, free_port
from tests.oidc import OidcProvider

APP = str(ROOT / "ui" / "app.py")


# -- the sign-in file --------------------------------------------------------------------------------
def _identity(tmp_path, **extra) -> Settings:
    given = {"oidc_issuer": "https://login.example.com/realms/acme/", "oidc_audience": "docstack-web",
             "oidc_client_secret": "s3cret", **extra}
    return Settings(home=tmp_path / "home", ui_port=free_port(), **given)


def test_up_writes_streamlits_sign_in_settings_for_the_owner_only(tmp_path):
    settings = _identity(tmp_path)
    path = ui_auth.write_secrets(settings)
    assert path.parent == settings.run_dir and stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["redirect_uri"] == f"http://127.0.0.1:{settings.ui_port}/oauth2callback"
    assert auth["server_metadata_url"] == "https://login.example.com/realms/acme/.well-known/openid-configuration"
    assert (auth["client_id"], auth["client_secret"], auth["expose_tokens"]) == ("docstack-web", "s3cret", ["id"])
    assert auth["client_kwargs"] == {"scope": "openid profile email"}
    assert len(auth["cookie_secret"]) >= 32
    cookie = auth["cookie_secret"]
    proxied = _identity(tmp_path, oidc_redirect_uri="https://docs.acme.example/oauth2callback",
                        oidc_scopes="openid profile email groups")
    auth = tomllib.loads(ui_auth.write_secrets(proxied).read_text())["auth"]
    assert auth["redirect_uri"] == "https://docs.acme.example/oauth2callback"
    assert auth["client_kwargs"] == {"scope": "openid profile email groups"}
    assert auth["cookie_secret"] == cookie  # kept: sign-ins survive a restart, replicas share it
    assert sorted(p.name for p in settings.run_dir.iterdir()) == ["ui-cookie-secret", "ui-secrets.toml"]
    shared = _identity(tmp_path, ui_cookie_secret="one-secret-for-every-replica-of-the-app")
    assert tomllib.loads(ui_auth.write_secrets(shared).read_text())["auth"]["cookie_secret"] == \
        "one-secret-for-every-replica-of-the-app"


def test_the_ui_reads_the_sign_in_file_only_with_identity_on(tmp_path):
    command = profiles.services(_identity(tmp_path), resolve=False)[-1].command
    assert command[command.index("--secrets.files") + 1] == str(ui_auth.secrets_file(_identity(tmp_path)))
    laptop = Settings(home=tmp_path / "home")
    assert "--secrets.files" not in profiles.services(laptop, resolve=False)[-1].command


def test_identity_without_a_client_secret_or_a_public_address_is_refused_with_the_fix(tmp_path):
    with pytest.raises(DocstackError, match="set DOCSTACK_OIDC_CLIENT_SECRET"):
        ui_auth.write_secrets(_identity(tmp_path, oidc_client_secret=None))
    with pytest.raises(DocstackError, match="set DOCSTACK_OIDC_REDIRECT_URI"):  # compose: the app listens on 0.0.0.0
        ui_auth.write_secrets(_identity(tmp_path, host="0.0.0.0"))
    assert not (tmp_path / "home" / "run" / "ui-secrets.toml").exists()


# -- the pages -----------------------------------------------------------------------------------------
@pytest.fixture
def team_docs(docstack, tmp_path):
    """hr-handbook for team hr, eng-notes for team engineering, made by the local admin."""
    for name, text in (("hr-handbook", "Holidays: 30 days a year."), ("eng-notes", "Deploys happen on Tuesdays.")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.md").write_text(f"# {name}\n\n{text}\n")
        docstack.ingest([folder], collection=name)
    docstack.grant("hr-handbook", read_teams=["hr"])
    docstack.grant("eng-notes", read_teams=["engineering"])
    return docstack


def _signed_in_app(monkeypatch, docstack, issuer: str):
    from streamlit.testing.v1 import AppTest

    from docstack.ui.common import docstack as shared

    monkeypatch.setenv("DOCSTACK_HOME", str(docstack.settings.home))
    monkeypatch.setenv("DOCSTACK_STACK_PORT", str(docstack.settings.stack_port))
    monkeypatch.setenv("DOCSTACK_OIDC_ISSUER", issuer)
    shared.clear()  # the app's DocStack must read this test's settings
    return AppTest.from_file(APP, default_timeout=60)


@pytest.fixture
def app(team_docs, monkeypatch, oidc):
    from docstack.ui.common import docstack as shared

    yield _signed_in_app(monkeypatch, team_docs, oidc.issuer)
    shared.clear()


def _as(page, oidc, user: str):
    from tests.oidc import USERS

    page.user = {"is_logged_in": True, "sub": user, "name": USERS[user]["name"], "tokens": {"id": oidc.token(user)}}
    return page


def _sidebar_text(page) -> str:
    return " ".join(e.value for e in (*page.sidebar.markdown, *page.sidebar.caption))


def test_signed_out_the_app_shows_only_the_sign_in_button(app):
    app.user = {"is_logged_in": False}
    app.run()
    assert not app.exception, app.exception
    assert [b.label for b in app.button] == ["Sign in"]
    assert app.info[0].value == "Sign in to read your team's documents."
    assert not app.sidebar.selectbox and not app.chat_input  # no collection, no page


def test_a_member_sees_her_teams_collections_her_name_and_team(app, oidc):
    _as(app, oidc, "alice").run()
    assert not app.exception, app.exception
    assert app.sidebar.selectbox[0].options == ["hr-handbook"]
    assert "Signed in as **Alice HR**" in _sidebar_text(app) and "Teams: hr" in _sidebar_text(app)
    assert app.chat_input[0].placeholder == "Ask about hr-handbook"


def test_a_link_to_another_teams_collection_reads_as_a_missing_one(app, oidc):
    def warning_for(collection: str) -> list[str]:
        page = _as(_fresh(app), oidc, "alice")
        page.query_params["collection"] = collection
        page.run()
        assert not page.exception, page.exception
        assert page.sidebar.selectbox[0].value == "hr-handbook"
        return [w.value.replace(collection, "NAME") for w in page.warning]

    assert warning_for("eng-notes") == warning_for("no-such-collection") == ["There is no collection 'NAME'."]


def _fresh(app):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=60)


def test_sign_out_asks_to_sign_in_again(app, oidc):
    _as(app, oidc, "bob").run()
    assert app.sidebar.selectbox[0].options == ["eng-notes"]
    next(b for b in app.sidebar.button if b.label == "Sign out").click().run()
    assert not app.exception, app.exception
    assert [b.label for b in app.button] == ["Sign in"] and not app.sidebar.selectbox


def test_an_expired_sign_in_says_so_and_offers_the_button_again(team_docs, monkeypatch):
    from docstack.ui.common import docstack as shared

    expiring = OidcProvider(token_max_age=-120).start()  # its tokens expired 2 minutes before they are issued
    try:
        page = _as(_signed_in_app(monkeypatch, team_docs, expiring.issuer), expiring, "alice")
        page.run()
    finally:
        expiring.stop()
        shared.clear()
    assert not page.exception, page.exception
    assert page.info[0].value == "Your sign-in is no longer valid: it has expired; sign in again."
    assert [b.label for b in page.button] == ["Sign in"] and not page.sidebar.selectbox


def test_a_forged_token_is_refused(app, oidc):
    token = oidc.token("alice")
    head, body, signature = token.split(".")
    app.user = {"is_logged_in": True, "tokens": {"id": f"{head}.{body}.{signature[:-6]}AAAAAA"}}
    app.run()
    assert app.info[0].value.startswith("Your sign-in is no longer valid: ")
    assert not app.sidebar.selectbox


def _documents(page):
    page.run()
    page.switch_page("documents_page.py").run()
    assert not page.exception, page.exception
    return page


def test_an_admin_edits_who_may_read_a_collection(app, oidc, team_docs):
    page = _documents(_as(app, oidc, "root"))
    assert page.sidebar.selectbox[0].options == ["eng-notes", "hr-handbook"]  # admins read everything
    page.sidebar.selectbox[0].select("eng-notes").run()
    fields = {t.label: t for t in page.text_input}
    assert fields["Teams who may read"].value == "engineering"
    fields["Teams who may read"].input("engineering, hr")
    fields["Roles who may change"].input("editor")
    next(b for b in page.button if b.label == "Save access").click().run()
    assert not page.exception, page.exception
    assert page.success[0].value == "Saved who may read and change eng-notes."
    grant = team_docs.access("eng-notes")
    assert (grant.read_teams, grant.write_roles) == ({"engineering", "hr"}, {"editor"})

    alice = _documents(_as(_fresh(app), oidc, "alice"))
    assert alice.sidebar.selectbox[0].options == ["eng-notes", "hr-handbook"]


def test_a_reader_cannot_change_a_collection_or_who_reads_it(app, oidc):
    page = _documents(_as(app, oidc, "hana"))
    assert page.subheader[0].value == "1 documents in hr-handbook"
    labels = {t.label for t in page.text_input}
    assert "Teams who may read" not in labels and "Re-sync a folder" not in labels
    assert not page.get("file_uploader") and not page.multiselect  # nothing to upload or delete with
    assert "You may read hr-handbook" in page.caption[0].value


def test_the_status_page_shows_the_servers_processes_to_admins_only(app, oidc):
    def headings(user: str) -> list[str]:
        page = _as(_fresh(app), oidc, user)
        page.run()
        page.switch_page("status_page.py").run()
        assert not page.exception, page.exception
        return [h.value for h in page.subheader]

    assert headings("root")[0] == "Services"
    assert "Services" not in headings("alice") and "Collections" in headings("alice")
