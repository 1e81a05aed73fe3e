"""docstack's web app: Chat (the landing page), Documents, Analyze and Status.

Page files hold page logic only; everything they do goes through `docstack.DocStack`, as the CLI does."""

from __future__ import annotations

import streamlit as st

from docstack.ui.common import collection_picker, docstack, keep_options


def main() -> None:
    st.set_page_config(page_title="docstack", page_icon="📄", layout="wide")
    keep_options()
    pages = st.navigation([  # page files are found next to this one
        st.Page("chat_page.py", title="Chat", icon=":material/chat:", default=True),
        st.Page("documents_page.py", title="Documents", icon=":material/folder:", url_path="documents"),
        st.Page("analyze_page.py", title="Analyze", icon=":material/analytics:", url_path="analyze"),
        st.Page("status_page.py", title="Status", icon=":material/settings:", url_path="status"),
    ])
    collection_picker(docstack())
    pages.run()


# Streamlit runs this file as __main__. Ingestion's worker processes re-import the main script as
# __mp_main__ (multiprocessing does that), and must not start a copy of the app there.
if __name__ == "__main__":
    main()
