"""What every page shares: the one DocStack of this server process, the signed-in user it runs
as, the analysis tasks running in it, and the chat options."""

from __future__ import annotations

import logging
import threading
import time
from typing import NoReturn

import streamlit as st

from docstack import LOCAL, AuthError, DocStack, DocstackError, Principal
from docstack.ui.analysis_view import escape_markdown
from docstack.ui.tasks import Tasks

log = logging.getLogger(__name__)

# Chat options live in session_state under these keys, set on the Status page, read by Chat.
OPTION_KEYS = ("opt_k", "opt_mode", "opt_model")
# Kept the same way: the document picked on the Analyze page.
KEPT_KEYS = (*OPTION_KEYS, "an_doc")
AUTO_MODEL = "(default)"
# The signed-in user (verified on every run) and the DocStack view that runs as them.
PRINCIPAL, USER_VIEW = "_principal", "_user_view"


@st.cache_resource
def docstack() -> DocStack:
    """The process's DocStack, holding the loaded models and open indexes. With identity on it is
    only the base of each user's view (`user_docstack`): pages never call it directly."""
    ds = DocStack(principal=LOCAL)
    warming(ds)
    return ds


@st.cache_resource
def warming(_ds: DocStack) -> threading.Thread:
    """The warm-up of the process's DocStack (`DocStack.warm_up`), started once, in the background.
    The server's launcher (ui/serve.py) waits for it before it listens: started by the first page
    instead, it raced the first question, which waited for the same loads (1.3 s of a 3.3 s first
    token on 2 quiet cores, bench/bench_webapp_latency.py)."""
    thread = threading.Thread(target=_warm_up, args=(_ds,), name="docstack-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up(ds: DocStack) -> None:
    started = time.perf_counter()
    try:
        ds.warm_up()
    except DocstackError as exc:  # e.g. no model file yet: the first question will say so
        log.info("warm-up skipped: %s", exc)
        return
    log.info("warmed up in %.1f s", time.perf_counter() - started)


def sign_in() -> Principal | None:
    """With identity on, the signed-in user, whose ID token the provider's keys verify; otherwise
    this draws the sign-in page and ends the run. None with identity off (no sign-in on a laptop)."""
    ds = docstack()
    if not ds.settings.identity:
        return None
    st.session_state.pop(PRINCIPAL, None)
    if "is_logged_in" not in st.user:  # no [auth] section: Streamlit was started without the sign-in file
        st.error("Sign-in is not set up for this app: start it with `docstack up` (it writes Streamlit's "
                 "sign-in settings from DOCSTACK_OIDC_*).")
        st.stop()
    if not st.user.get("is_logged_in"):
        _sign_in_page("Sign in to read your team's documents.")
    token = st.user.tokens.to_dict().get("id")
    if not token:  # Streamlit passes it on only when told to (expose_tokens), as `docstack up` does
        st.error("The sign-in passed no ID token: start the app with `docstack up` (its sign-in settings "
                 "expose the token).")
        st.stop()
    try:
        principal = ds.verifier.verify(token)
    except AuthError as exc:
        _sign_in_page(f"Your sign-in is no longer valid: {str(exc).removeprefix('token refused: ')}.")
    st.session_state[PRINCIPAL] = principal
    return principal


def _sign_in_page(message: str) -> NoReturn:
    st.title("docstack")
    st.info(message)
    st.button("Sign in", type="primary", on_click=st.login)
    st.stop()


def signed_in_as(principal: Principal) -> None:
    """Who is signed in, their teams, and a way out, in the sidebar."""
    with st.sidebar:
        st.markdown(f"Signed in as **{escape_markdown(principal.name)}**")  # the provider's words, shown as written
        teams, roles = (escape_markdown(", ".join(sorted(names))) for names in (principal.teams, principal.roles))
        st.caption(f"Teams: {teams or 'none'}" + (f" · roles: {roles}" if roles else ""))
        st.button("Sign out", on_click=st.logout, width="stretch")


def current_user() -> Principal:
    """Who the pages act for: the signed-in user, or the laptop's local admin with identity off."""
    user = st.session_state.get(PRINCIPAL)
    if user is not None:
        return user
    if docstack().settings.identity:
        raise AuthError("nobody is signed in: sign in again")
    return LOCAL


def user_docstack() -> DocStack:
    """The DocStack every page calls: with identity on, a view of the process's one that runs
    everything (collections, answers, pictures, uploads, analysis) as the signed-in user."""
    ds = docstack()
    if not ds.settings.identity:
        return ds
    user = current_user()
    base, token, view = st.session_state.get(USER_VIEW, (None, None, None))
    if base is not ds or token != user.token:  # made once per sign-in, not on every run
        view = ds.as_user(user)
        st.session_state[USER_VIEW] = (ds, user.token, view)
    return view


def keep_options() -> None:
    """Streamlit forgets a widget's value on pages that do not draw it; re-setting the keys on
    every run keeps the Status page's choices while the user is on Chat (and the Analyze page's
    document while the user is elsewhere)."""
    for key in KEPT_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def options(ds: DocStack) -> tuple[int, str, str | None]:
    """k, search mode and model for answers (None: the stack's default model)."""
    k = st.session_state.get("opt_k", ds.settings.ask_k)
    mode = st.session_state.get("opt_mode", ds.settings.search_mode)
    model = st.session_state.get("opt_model", AUTO_MODEL)
    return k, mode, None if model == AUTO_MODEL else model


def collection() -> str | None:
    return st.session_state.get("collection")


def select_collection(name: str) -> None:
    """Make `name` the picked collection on the next run (a drawn widget's value cannot be set)."""
    st.session_state["_pick_collection"] = name


def collection_picker(ds: DocStack) -> str | None:
    names = list(ds.collections())  # only those the user may read
    # A link may name the collection: /?collection=handbook
    wanted = st.session_state.pop("_pick_collection", None) or st.query_params.pop("collection", None)
    if wanted in names:
        st.session_state["collection"] = wanted
    elif wanted:  # the same words for a collection hidden from this user as for a missing one
        st.warning(f"There is no collection '{wanted}'.")
    if st.session_state.get("collection") not in names:
        st.session_state["collection"] = "samples" if "samples" in names else (names[0] if names else None)
    if not names:
        return None
    return st.sidebar.selectbox("Collection", names, key="collection")


@st.cache_resource
def tasks() -> Tasks:
    """The analysis work running in this server process (summaries, extraction), for every session."""
    return Tasks()
