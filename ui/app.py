"""docstack's web app: Chat (the landing page), Documents and Status.

Page files hold page logic only; everything they do goes through `docstack.DocStack`, as the CLI does."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from docstack.ui.common import collection_picker, docstack, keep_options

HERE = Path(__file__).parent

st.set_page_config(page_title="docstack", page_icon="📄", layout="wide")
keep_options()
pages = st.navigation([
    st.Page(HERE / "chat_page.py", title="Chat", icon=":material/chat:", default=True),
    st.Page(HERE / "documents_page.py", title="Documents", icon=":material/folder:", url_path="documents"),
    st.Page(HERE / "status_page.py", title="Status", icon=":material/settings:", url_path="status"),
])
collection_picker(docstack())
pages.run()
