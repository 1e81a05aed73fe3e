"""docstack's web app: ask a question about a collection, read the answer with its citations.

Page logic only; everything it does goes through `docstack.DocStack`, as the CLI does."""

from __future__ import annotations

import streamlit as st

from docstack import DocStack
from docstack.console import DocstackError
from docstack.stack.retrieval import MODES


@st.cache_resource
def docstack() -> DocStack:
    return DocStack()


def cited_where(source: str, page: int | None) -> str:
    name = source.rsplit("/", 1)[-1]
    return f"{name}, page {page}" if page else name


def main() -> None:
    st.set_page_config(page_title="docstack", page_icon="📄", layout="wide")
    ds = docstack()
    st.title("docstack")
    collections = list(ds.collections())
    if not collections:
        st.info("No documents yet. Add some with `docstack ingest PATH`.")
        return
    default = collections.index("samples") if "samples" in collections else 0
    collection = st.sidebar.selectbox("Collection", collections, index=default)
    k = st.sidebar.slider("Passages to read", 1, 20, ds.settings.ask_k)
    mode = st.sidebar.selectbox("Search", MODES, index=MODES.index(ds.settings.search_mode))

    question = st.chat_input("Ask about your documents")
    if not question:
        return
    with st.chat_message("user"):
        st.write(question)
    with st.chat_message("assistant"):
        text = st.empty()
        try:
            with st.spinner("Searching…"):
                stream = ds.stream(question, collection=collection, k=k, mode=mode)
            text.write_stream(stream)
        except DocstackError as exc:
            st.error(str(exc))
            return
        answer = stream.answer
        text.markdown(answer.answer)  # now with its [n] citation markers
        if answer.abstained:
            st.warning("The documents do not contain the answer.")
        safety = answer.safety
        if safety.blocked:
            st.error(f"Blocked by the safety shields at the {safety.stage} stage ({safety.category}).")
        elif safety.redactions or safety.dropped_chunks:
            st.info(f"Safety: {safety.redactions} redactions, {safety.dropped_chunks} passages left out.")
        for c in answer.citations:
            with st.expander(f"[{c.n}] {cited_where(c.source, c.page)}"):
                st.caption(c.source)
                st.write(c.text)
        st.caption(f"{answer.model} · first token {answer.first_token_seconds or 0:.1f}s · {answer.seconds:.1f}s")


main()
