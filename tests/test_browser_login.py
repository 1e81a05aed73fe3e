"""Signing in to the web app in a real browser (Debian's Chromium driven by Playwright): the app
that `DocStack.up()` starts with identity on, against the local OIDC provider (tests/oidc.py), whose
own authorization page the test signs in on. Only the web app runs (no model is needed to list
collections), started once for the module. Screenshots go to artifacts/ (gitignored)."""

from __future__ import annotations

import pytest

from docstack import LOCAL, DocStack, Settings
from tests.conftest import SHARED_MODELS, free_port
from tests.test_browser import ARTIFACTS, CHROMIUM, shot

pytestmark = [pytest.mark.stack, pytest.mark.browser]

SIDEBAR = '[data-testid="stSidebar"]'


@pytest.fixture(scope="module")
def ui(oidc, embedder, tmp_path_factory) -> str:
    """The web app with identity on, and two collections: hr-handbook for team hr, eng-notes for engineering."""
    home = tmp_path_factory.mktemp("login-home")
    settings = Settings(home=home, models_dir=SHARED_MODELS, stack_port=free_port(), model_port=free_port(),
                        ui_port=free_port(), oidc_issuer=oidc.issuer, oidc_client_secret="docstack-ui-secret")
    admin = DocStack(settings, embedder=embedder, principal=LOCAL)
    for name, team, text in (("hr-handbook", "hr", "Holidays: 30 days a year."),
                             ("eng-notes", "engineering", "Deploys happen on Tuesdays.")):
        folder = home / "docs" / name
        folder.mkdir(parents=True)
        (folder / f"{name}.md").write_text(f"# {name}\n\n{text}\n")
        admin.ingest([folder], collection=name)
        admin.grant(name, read_teams=[team])
    admin.up(only=["ui"])
    yield settings.ui_url
    admin.down()


@pytest.fixture(scope="module")
def page(ui):
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine: `apt-get install -y chromium` (`make install` does it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        yield tab
        shot(tab, "login-last")  # where the test ended, also when it failed
        browser.close()


def sign_in(page, ui: str, user: str) -> None:
    """Through the provider's own page: its form lists the predefined users; pick one."""
    page.goto(ui)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Authorize Client").wait_for(timeout=30_000)
    shot(page, "login-provider")
    page.get_by_role("button", name=f"Authorize as {user}").click()
    page.locator(SIDEBAR).get_by_text("Signed in as").wait_for(timeout=30_000)


def test_alice_signs_in_sees_only_her_teams_collection_and_signs_out(page, ui):
    page.goto(ui)
    page.get_by_text("Sign in to read your team's documents.").wait_for(timeout=60_000)
    assert page.locator('[data-testid="stChatInputTextArea"]').count() == 0  # nothing before sign-in
    shot(page, "login-signed-out")

    sign_in(page, ui, "alice")
    sidebar = page.locator(SIDEBAR)
    assert "Alice HR" in sidebar.get_by_text("Signed in as").inner_text()
    sidebar.get_by_text("Teams: hr").wait_for()  # drawn just after the name: waited for, not counted at once
    page.get_by_placeholder("Ask about hr-handbook").wait_for()
    sidebar.locator('[data-testid="stSelectbox"]').click()
    options = page.get_by_role("option")
    options.first.wait_for()
    assert [o.strip() for o in options.all_inner_texts()] == ["hr-handbook"]
    page.keyboard.press("Escape")
    shot(page, "login-alice")

    for hidden in ("eng-notes", "no-such-collection"):  # another team's collection reads as a missing one
        page.goto(f"{ui}/?collection={hidden}")
        page.get_by_text(f"There is no collection '{hidden}'.").wait_for(timeout=30_000)
        page.get_by_placeholder("Ask about hr-handbook").wait_for()
    shot(page, "login-hidden-collection")

    sidebar.get_by_role("button", name="Sign out").click()
    # The provider's end-session page (oidc-provider-mock has one) confirms, then sends the browser back.
    page.get_by_role("button", name="End session").click(timeout=30_000)
    page.get_by_text("Sign in to read your team's documents.").wait_for(timeout=30_000)
    page.reload()  # signed out for good: a new page load finds no sign-in cookie
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    assert page.locator(SIDEBAR).get_by_text("Signed in as").count() == 0
    shot(page, "login-signed-out-again")
