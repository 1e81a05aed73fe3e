"""Chat: ask about a collection, read the streamed answer and check its sources."""

from __future__ import annotations

import html
import re
from itertools import chain

import streamlit as st

from docstack import DocstackError, Evidence, refusal
from docstack.ui.common import collection, options, user_docstack
from docstack.ui.transcript import ChatTurn, blocked, history, timing, to_markdown

_SOFT_BREAK = re.compile(r"(?<!\n)\n(?!\n)")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.M)
# Text shown before and after the marked sentence: enough to read it in context, little enough
# that the marked sentence is in view without scrolling the card.
BEFORE_CHARS, AFTER_CHARS = 240, 360
CUT_SHORT = "Not answered: another question was sent before this answer was finished. Ask it again."


def passage_html(card: Evidence) -> str:
    """The passage as quoted text with its best sentence marked. A Markdown passage's headings
    are plain text (they rendered at full size and pushed the marked sentence out of view), and
    the HTML is one line: a blank line would end the HTML block and let Markdown in again."""
    before, after = _last(card.before, BEFORE_CHARS), _first(card.after, AFTER_CHARS)
    return (f'<blockquote class="passage">{_quoted(before)}<mark>{_quoted(card.match)}</mark>'
            f"{_quoted(after)}</blockquote>")


def _quoted(text: str) -> str:
    text = html.escape(_SOFT_BREAK.sub(" ", _HEADING.sub("", text)))  # a PDF's hard line breaks become spaces
    return _PARAGRAPH_BREAK.sub("<br>", text)


def _last(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return "… " + cut[cut.find(" ") + 1:]


def _first(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[:cut.rfind(" ")] + " …"


def show_card(card: Evidence, key: str) -> None:
    with st.container(border=True, key=key):  # the key gives the card a class: st-key-card-...
        text, picture = st.columns([3, 2]) if card.preview else (st.container(), None)
        with text:
            st.markdown(f"**[{card.n}] {card.name}**" + (f" · {card.page_text}" if card.page else ""))
            if card.section:
                st.caption(card.section)
            st.markdown(passage_html(card), unsafe_allow_html=True)
            st.caption(card.source)
        if picture is not None:
            with picture:
                st.image(str(card.preview), caption=f"{card.name}, {card.page_text}", width="stretch")


def show_answer(turn: ChatTurn, number: int) -> None:
    """Everything after the answer's text: what kind of answer it is, timing, sources."""
    answer = turn.answer
    if turn.error:
        st.error(turn.error)
        return
    verdict = blocked(answer)
    if verdict:
        st.error(refusal(verdict.stage, verdict.category))
    elif answer.abstained:
        st.warning("Not answered: the documents do not contain the answer.")
    st.caption(timing(answer))
    for note in answer.notices:
        st.caption(f"Note: {note}")
    for sentence in answer.unsupported:
        st.caption(f"Not found in the passages: {sentence}")
    if turn.rewritten:
        with st.expander("Searched as (follow-up rewritten)"):
            st.write(turn.searched)
    for card in turn.evidence:
        show_card(card, key=f"card-{number}-{card.n}")


def show_turn(turn: ChatTurn, number: int) -> None:
    with st.chat_message("user"):
        st.write(turn.question)
    with st.chat_message("assistant"):
        if turn.answer is not None:
            st.markdown(turn.answer.answer)
        show_answer(turn, number)


def ask(question: str, name: str, turns: list[ChatTurn]) -> None:
    """Answer `question` and add the turn to `turns`: at once, so that a question sent before this
    one is answered (which stops this run and starts the page again) does not lose it."""
    ds = user_docstack()
    k, mode, model = options(ds)
    earlier, number = list(turns), len(turns)
    turn = ChatTurn(question, question, error=CUT_SHORT)
    turns.append(turn)
    with st.chat_message("assistant"):
        text = st.empty()
        waiting = st.empty()  # says so while the model answers other people's questions first
        try:
            if earlier:
                with st.spinner("Reading the conversation…"):
                    turn.searched = ds.rewrite(question, history(earlier), model,
                                               on_wait=lambda w: waiting.caption(str(w)))
            with st.spinner("Searching and reading…"):
                stream = ds.stream(turn.searched, collection=name, model=model, k=k, mode=mode,
                                   on_wait=lambda w: waiting.caption(str(w)))
                tokens = iter(stream)
                first = next(tokens, "")  # the spinner stays until the first token
            waiting.empty()
            text.write_stream(chain([first], tokens))
            turn.answer, turn.error = stream.answer, None
            text.markdown(turn.answer.answer)  # now with its [n] citation markers
            turn.evidence = ds.evidence(turn.answer, name)
        except DocstackError as exc:
            turn.error = str(exc)
        finally:
            waiting.empty()
        show_answer(turn, number)


def main() -> None:
    name = collection()
    st.title("Chat")
    if name is None:
        st.info("No documents yet: add some on the Documents page.")
        st.page_link("documents_page.py", label="Go to Documents", icon=":material/folder:")
        return
    turns: list[ChatTurn] = st.session_state.setdefault("chats", {}).setdefault(name, [])
    for number, turn in enumerate(turns):
        show_turn(turn, number)
    question = st.chat_input(f"Ask about {name}")
    if question:
        with st.chat_message("user"):
            st.write(question)
        ask(question, name, turns)
    # Last, so that a question just answered is in the export.
    with st.sidebar:
        if turns:
            st.download_button("Export chat (Markdown)", to_markdown(turns, name), file_name=f"docstack-{name}.md",
                               mime="text/markdown", width="stretch", on_click="ignore")
            if st.button("Clear chat", width="stretch"):
                turns.clear()
                st.rerun()


main()
