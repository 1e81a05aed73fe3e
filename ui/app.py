"""docstack's web app: Chat (the landing page), Documents, Analyze and Status.

Page files hold page logic only; everything they do goes through `docstack.DocStack`, as the CLI does,
as the signed-in user when identity is on (`user_docstack`)."""

from __future__ import annotations

import streamlit as st

from docstack.ui.common import collection_picker, keep_options, sign_in, signed_in_as, user_docstack


def main() -> None:
    st.set_page_config(page_title="docstack", page_icon="📄", layout="wide")
    user = sign_in()  # with identity on, nothing below runs until someone is signed in
    keep_options()
    pages = st.navigation([  # page files are found next to this one
        st.Page("chat_page.py", title="Chat", icon=":material/chat:", default=True),
        st.Page("documents_page.py", title="Documents", icon=":material/folder:", url_path="documents"),
        st.Page("analyze_page.py", title="Analyze", icon=":material/analytics:", url_path="analyze"),
        st.Page("status_page.py", title="Status", icon=":material/settings:", url_path="status"),
    ])
    if user is not None:
        signed_in_as(user)
    collection_picker(user_docstack())
    pages.run()


# Streamlit runs this file as __main__. Ingestion's worker processes re-import the main script as
# __mp_main__ (multiprocessing does that), and must not start a copy of the app there.
if __name__ == "__main__":
    main()
