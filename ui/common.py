"""What every page shares: the one DocStack of this server process, the analysis tasks running
in it, and the chat options."""

from __future__ import annotations

import logging
import threading

import streamlit as st

from docstack import DocStack, DocstackError
from docstack.ui.tasks import Tasks

log = logging.getLogger(__name__)

# Chat options live in session_state under these keys, set on the Status page, read by Chat.
OPTION_KEYS = ("opt_k", "opt_mode", "opt_model")
# Kept the same way: the document picked on the Analyze page.
KEPT_KEYS = (*OPTION_KEYS, "an_doc")
AUTO_MODEL = "(default)"


@st.cache_resource
def docstack() -> DocStack:
    ds = DocStack()
    # In the background, so the first page is not held up by it.
    threading.Thread(target=_warm_up, args=(ds,), name="docstack-warm-up", daemon=True).start()
    return ds


def _warm_up(ds: DocStack) -> None:
    try:
        ds.warm_up()
    except DocstackError as exc:  # e.g. no model file yet: the first question will say so
        log.info("warm-up skipped: %s", exc)


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
    names = list(ds.collections())
    # A link may name the collection: /?collection=handbook
    wanted = st.session_state.pop("_pick_collection", None) or st.query_params.pop("collection", None)
    if wanted in names:
        st.session_state["collection"] = wanted
    if st.session_state.get("collection") not in names:
        st.session_state["collection"] = "samples" if "samples" in names else (names[0] if names else None)
    if not names:
        return None
    return st.sidebar.selectbox("Collection", names, key="collection")


@st.cache_resource
def tasks() -> Tasks:
    """The analysis work running in this server process (summaries, extraction), for every session."""
    return Tasks()
