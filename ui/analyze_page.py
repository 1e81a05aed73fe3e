"""Analyze: one long document at a time. Its outline as a tree; a section's summary (each sentence
with its pages) or its pages; every mention of a term; extraction into a table and CSV; two
documents compared side by side. Summaries and extraction run in a background thread of the
server (docstack.ui.tasks) under a progress bar with a Cancel button, while the page stays usable.
Everything goes through `DocStack`, as the CLI's outline/mentions/summarize/extract/compare/jobs do."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from docstack import DocstackError, DocumentInfo
from docstack.ui.analysis_view import (
    Entry,
    change_pages,
    compare_counts,
    escape_markdown,
    extraction_footer,
    extraction_rows,
    label_of,
    mention_rows,
    mentions_heading,
    one_line,
    outline_entries,
    page_text,
    part_pages,
    progress,
    sentence_pages,
    summary_footer,
    summary_target,
)
from docstack.ui.common import collection, options, tasks, user_docstack
from docstack.ui.tasks import Task, job_of

POLL_SECONDS = 1.0  # how often the progress bars ask `DocStack.jobs`, while something runs
MAX_PICTURES = 6  # pages pictured for a section; the caption says when there are more
SCROLL_AFTER = 14  # outline entries shown before the tree scrolls in its own box
FILTER_AFTER = 20  # outline entries from which a filter box is offered
TABS = ["Outline", "Mentions", "Extract", "Compare"]


# -- the document ---------------------------------------------------------------------------------
def pick_document(name: str, docs: list[DocumentInfo]) -> DocumentInfo:
    by_path = {d.path: d for d in docs}
    # A link may name the document: /analyze?collection=handbook&document=manual.pdf
    wanted = st.query_params.pop("document", None)
    if wanted:
        match = [d.path for d in docs if wanted in (d.name, d.path, d.source)]
        if match:
            st.session_state["an_doc"] = match[0]
    if st.session_state.get("an_doc") not in by_path:
        st.session_state["an_doc"] = docs[0].path
    path = st.selectbox("Document", list(by_path), key="an_doc", format_func=lambda p: _shown(by_path[p], docs))
    return by_path[path]


def _shown(doc: DocumentInfo, docs: list[DocumentInfo]) -> str:
    same_name = sum(d.name == doc.name for d in docs) > 1
    where = f" ({Path(doc.path).parent.name})" if same_name else ""
    return f"{doc.name}{where} · {doc.pages} page{'' if doc.pages == 1 else 's'}"


def picked(path: str) -> tuple | None:
    """What the outline's detail shows for the document: ("section", index, title), ("whole",)
    or ("pages", first, last)."""
    pick = st.session_state.get("an_pick")
    return pick[1] if pick and pick[0] == path else None


def pick(path: str, what: tuple) -> None:
    st.session_state["an_pick"] = (path, what)


# -- long work in the background --------------------------------------------------------------------
def start_summary(name: str, doc: DocumentInfo, key: tuple, label: str, target: dict, model: str | None) -> None:
    ds = user_docstack()
    tasks().start(Task(key, name, doc.source, "summarize", label),
                  lambda on_progress: ds.summarize(doc.path, name, model=model, on_progress=on_progress, **target))


def start_extraction(name: str, doc: DocumentInfo, model: str | None) -> None:
    fields = [f.strip() for f in st.session_state.get("an_fields", "").split(",") if f.strip()]
    if not fields:
        st.session_state["an_extract_error"] = "Name the fields to extract, comma-separated: e.g. party, date, amount."
        return
    st.session_state.pop("an_extract_error", None)
    key = ("extract", name, doc.path, tuple(f.casefold() for f in fields), model)
    st.session_state["an_extract_key"] = key
    ds = user_docstack()
    tasks().start(Task(key, name, doc.source, "extract", f"Extraction of {', '.join(fields)} from {doc.name}"),
                  lambda on_progress: ds.extract(doc.path, fields, name, model=model, on_progress=on_progress))


def jobs_panel(name: str) -> None:
    """Progress bars of the collection's running jobs (this server's tasks, and jobs another
    process runs, such as `docstack summarize --background`), each with a Cancel button. While
    any runs, the panel polls `DocStack.jobs`; when the last ends, the page is drawn again with
    the results."""
    polling = bool(tasks().running(name)) or any(j.state in ("running", "queued") for j in _jobs(name))

    @st.fragment(run_every=POLL_SECONDS if polling else None)
    def panel() -> None:
        running = tasks().running(name)
        listed = _jobs(name)
        taken: set[str] = set()
        bars = []
        for task in running:
            job = job_of(task, listed, taken)
            if job is not None:
                taken.add(job.id)
            bars.append((task.label, job, task))
        for job in listed:
            if job.state in ("running", "queued") and job.id not in taken:
                bars.append((f"{job.operation.capitalize()} of {Path(job.document).name} (job {job.id})", job, None))
        if polling and not bars:
            st.rerun()  # the work is done: draw its results, and stop polling
        if not bars:
            return
        with st.container(border=True, key="an_jobs"):
            for label, job, task in bars:
                share, text = progress(job)
                bar, cancel = st.columns([5, 1], vertical_alignment="bottom")
                bar.progress(share, text=f"{escape_markdown(label)}: {text}")
                asked = job is not None and job.cancel or task is not None and task.cancel_asked
                key = f"an_cancel_{job.id if job else id(task)}"
                cancel.button("Cancel", key=key, disabled=job is None or asked, width="stretch", on_click=stop,
                              args=(name, job.id if job else "", task))
            if error := st.session_state.pop("an_cancel_error", None):
                st.error(error)

    panel()


def stop(name: str, job_id: str, task: Task | None) -> None:
    """Cancel: the job stops after the unit in flight, and keeps what finished."""
    try:
        if task is not None:
            tasks().cancel(task, job_id, user_docstack().cancel_job)
        else:
            user_docstack().cancel_job(job_id, name)
    except DocstackError as exc:
        st.session_state["an_cancel_error"] = one_line(exc)


def _jobs(name: str) -> list:
    try:
        return user_docstack().jobs(name)
    except DocstackError:
        return []


def task_state(task: Task | None, what: str) -> bool:
    """Say where a task is; True when it has a result to show."""
    if task is None:
        return False
    if task.running:
        st.info(f"{what} is under way: its progress is at the top of the page. You can go on using the page.")
        return False
    if task.cancelled:
        st.warning(f"Cancelled: {one_line(task.error)}")
        return False
    if task.error is not None:
        st.error(one_line(task.error))
        return False
    return task.result is not None


# -- outline and summaries -----------------------------------------------------------------------
def outline_view(name: str, doc: DocumentInfo, model: str | None) -> None:
    try:
        outline = user_docstack().outline(doc.path, name)
    except DocstackError as exc:
        st.error(one_line(exc))
        return
    sections = outline["sections"]
    tree, detail = st.columns([2, 3], gap="large")
    with tree:
        found = (f"{len(sections)} sections from its {outline['source']}" if sections
                 else "no outline (no bookmarks or headings)")
        st.caption(f"{doc.pages} page{'' if doc.pages == 1 else 's'} · {found}")
        st.button("Summarise the whole document", key="an_whole", on_click=pick, args=(doc.path, ("whole",)),
                  help="A job: on a small model it is written from the outline and key passages of each section.")
        if doc.pages > 1:
            with st.expander("Summarise pages"), st.form("an_pages_form", border=False):
                left, right = st.columns(2)
                first = left.number_input("From page", 1, doc.pages, 1, key="an_from")
                last = right.number_input("To page", 1, doc.pages, min(doc.pages, 2), key="an_to")
                if st.form_submit_button("Pick these pages"):
                    pick(doc.path, ("pages", int(min(first, last)), int(max(first, last))))
        wanted = st.text_input("Filter sections", key="an_filter") if len(sections) > FILTER_AFTER else ""
        entries = outline_entries(outline, wanted)
        chosen = picked(doc.path)
        with st.container(height=520 if len(entries) > SCROLL_AFTER else "content", border=False, gap=None,
                          key="an_outline"):
            for entry in entries:
                st.button(entry.label(chosen == ("section", entry.index, entry.title)), key=f"an_section_{entry.index}",
                          type="tertiary", on_click=pick, args=(doc.path, ("section", entry.index, entry.title)))
    with detail:
        detail_view(name, doc, outline, model)


def detail_view(name: str, doc: DocumentInfo, outline: dict, model: str | None) -> None:
    what = picked(doc.path)
    sections = outline["sections"]
    if what and what[0] == "section" and not (what[1] < len(sections) and sections[what[1]]["title"] == what[2]):
        what = None  # the document was ingested again with another outline
    if what is None:
        st.info("Pick a section to summarise it or see its pages." if sections else
                "Summarise the whole document, or pick pages to summarise.")
        return
    if what[0] == "section":
        entry: Entry = next(e for e in outline_entries(outline) if e.index == what[1])
        title, target, first, last = entry.title, summary_target(outline, entry.index), entry.first, entry.last
        st.subheader(title)
        st.caption(entry.span or "this format has no pages")
    elif what[0] == "whole":
        title, target, first, last = doc.name, {}, None, None
        st.subheader("The whole document")
        st.caption(f"{doc.name} · {doc.pages} page{'' if doc.pages == 1 else 's'}")
    else:
        first, last = what[1], what[2]
        title, target = f"pages {first}–{last}", {"pages": (first, last)}
        st.subheader(f"Pages {first}–{last}")
    key = ("summarize", name, doc.path, what, model)
    task = tasks().get(key)
    summarise, pages = st.columns(2, vertical_alignment="center")
    if task is None or (not task.running and task.result is None):
        summarise.button("Summarise", type="primary", key="an_summarise", on_click=start_summary,
                         args=(name, doc, key, f"Summary of {title}", target, model))
    show_pages = first is not None and doc.path.lower().endswith(".pdf") and \
        pages.toggle("Show its pages", key="an_show_pages")
    if task_state(task, f"The summary of {title}"):
        summary_view(task.result)
    if show_pages:
        pictures(doc, outline, first, last, sections[what[1]] if what[0] == "section" else None)


def summary_view(result: dict) -> None:
    with st.container(key="an_summary"):
        if not result["sentences"]:
            st.warning("The model wrote no sentence that could be kept; try a larger model on the Status page.")
        for sentence in result["sentences"]:
            st.markdown(escape_markdown(sentence["text"]))
            st.caption(sentence_pages(sentence))
        st.caption(summary_footer(result))


def pictures(doc: DocumentInfo, outline: dict, first: int, last: int, section: dict | None) -> None:
    previews = user_docstack().previews
    shown = range(first, min(last, first + MAX_PICTURES - 1) + 1)
    if len(shown) < last - first + 1:
        st.caption(f"The first {len(shown)} of its {last - first + 1} pages.")
    for number in shown:
        picture = previews.page(Path(doc.path), number)
        caption = page_text(number, label_of(outline, number, section))
        if picture is None:
            st.caption(f"{caption}: no picture (the file is gone or not a readable PDF)")
        else:
            st.image(str(picture), caption=caption, width="stretch")


# -- mentions, extraction, comparison -----------------------------------------------------------
def table(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if "page" in frame:
        frame["page"] = frame["page"].astype("Int64")  # whole numbers, blank where a format has no pages
    return frame


def mentions_view(name: str, doc: DocumentInfo) -> None:
    with st.form("an_mentions_form", border=False):
        term = st.text_input("Term", key="an_term", placeholder="a word or phrase")
        everywhere = st.checkbox(f"In every document of {name}", key="an_everywhere")
        submitted = st.form_submit_button("Find mentions")
    if submitted and term.strip():
        scope = None if everywhere else doc.path
        try:
            result = user_docstack().mentions(term.strip(), scope, name)
        except DocstackError as exc:
            st.error(one_line(exc))
            return
        st.session_state["an_mentions"] = {"key": (name, scope), "result": result}
    saved = st.session_state.get("an_mentions")
    if not saved or saved["key"] not in ((name, doc.path), (name, None)):
        return
    result = saved["result"]
    st.markdown(f"**{escape_markdown(mentions_heading(result))}**")
    if result["mentions"]:
        st.dataframe(table(mention_rows(result, with_document=saved["key"][1] is None)), hide_index=True,
                     width="stretch", key="an_mentions_table")


def extract_view(name: str, doc: DocumentInfo, model: str | None) -> None:
    with st.form("an_extract_form", border=False):
        st.text_input("Fields", key="an_fields", placeholder="party, date, amount",
                      help="What each row holds, comma-separated. Rows keep only items whose quote is in the text.")
        st.form_submit_button("Extract", on_click=start_extraction, args=(name, doc, model))
    if error := st.session_state.get("an_extract_error"):
        st.error(error)
    key = st.session_state.get("an_extract_key")
    if not key or key[1:3] != (name, doc.path):
        return
    task = tasks().get(key)
    if not task_state(task, task.label if task else ""):
        return
    result = task.result
    st.caption(extraction_footer(result))
    if result["rows"]:
        st.dataframe(table(extraction_rows(result)), hide_index=True, width="stretch", key="an_extract_table")
    st.download_button("Download CSV", user_docstack().extraction_csv(result),
                       file_name=f"{Path(doc.name).stem}-extract.csv", mime="text/csv", on_click="ignore",
                       disabled=not result["rows"])


def compare_view(name: str, doc: DocumentInfo, docs: list[DocumentInfo]) -> None:
    if len(docs) < 2:
        st.info(f"Comparing needs two documents (two versions of one) in {name}, and it holds one.")
        return
    paths = [d.path for d in docs]
    by_path = {d.path: d for d in docs}
    other = next(p for p in paths if p != doc.path)
    with st.form("an_compare_form", border=False):
        left, right = st.columns(2)
        a = left.selectbox("Earlier version (A)", paths, index=paths.index(doc.path),
                           format_func=lambda p: _shown(by_path[p], docs))
        b = right.selectbox("Later version (B)", paths, index=paths.index(other),
                            format_func=lambda p: _shown(by_path[p], docs))
        submitted = st.form_submit_button("Compare")
    if submitted:
        try:
            result = user_docstack().compare(a, b, name)
        except DocstackError as exc:
            st.error(one_line(exc))
            return
        st.session_state["an_compare"] = {"key": (name, a, b), "result": result}
    saved = st.session_state.get("an_compare")
    if saved and saved["key"][0] == name:
        comparison_view(saved["result"])


def _sections_only_in(heading: str, parts: list[dict], mark: str) -> None:
    """One side of the comparison: the sections only that document has, each with its pages."""
    st.markdown(heading)
    for part in parts:
        st.markdown(f"{mark} {escape_markdown(part['title'])}] · {escape_markdown(part_pages(part))}")
    if not parts:
        st.caption("nothing")


def comparison_view(result: dict) -> None:
    a, b = Path(result["a"]).name, Path(result["b"]).name
    st.markdown(f"**A** {escape_markdown(a)} → **B** {escape_markdown(b)}: {compare_counts(result)}")
    removed, added = st.columns(2)
    with removed:
        _sections_only_in("**Only in A (removed)**", result["removed"], ":red[−")
    with added:
        _sections_only_in("**Only in B (added)**", result["added"], ":green[+")
    for n, change in enumerate(result["changed"]):
        with st.container(border=True, key=f"an_change_{n}"):
            renamed = f" (was “{escape_markdown(change['old_title'])}”)" if change.get("old_title") else ""
            st.markdown(f"**{escape_markdown(change['title'])}**{renamed}")
            st.caption(change["summary"])
            left, right = st.columns(2)
            with left:
                st.caption(f"A: {change_pages(change, 'a')}")
                for sentence in change["removed_sentences"]:
                    st.markdown(f":red[− {escape_markdown(sentence)}]")
            with right:
                st.caption(f"B: {change_pages(change, 'b')}")
                for sentence in change["added_sentences"]:
                    st.markdown(f":green[+ {escape_markdown(sentence)}]")


def jobs_list(name: str) -> None:
    listed = _jobs(name)
    if not listed:
        return
    with st.expander(f"Jobs in {name} ({len(listed)})"):
        st.dataframe(pd.DataFrame([{
            "job": j.id, "operation": j.operation, "document": Path(j.document).name,
            "state": j.state + (" (cancelling)" if j.cancel and j.state == "running" else ""),
            "done": f"{j.done}/{j.total}", "cached": j.cached, "model calls": j.model_calls, "model": j.model,
            "error": j.error or "",
        } for j in listed]), hide_index=True, width="stretch")


def main() -> None:
    st.title("Analyze")
    name = collection()
    if name is None:
        st.info("No documents yet: add some on the Documents page.")
        st.page_link("documents_page.py", label="Go to Documents", icon=":material/folder:")
        return
    try:
        docs = user_docstack().documents(name)
    except DocstackError as exc:
        st.error(one_line(exc))
        return
    if not docs:
        st.info(f"No documents in {name} yet: add some on the Documents page.")
        st.page_link("documents_page.py", label="Go to Documents", icon=":material/folder:")
        return
    doc = pick_document(name, docs)
    model = options(user_docstack())[2]
    jobs_panel(name)
    outline_tab, mentions_tab, extract_tab, compare_tab = st.tabs(TABS, key="an_tab", on_change="rerun")
    if outline_tab.open:
        with outline_tab:
            outline_view(name, doc, model)
    if mentions_tab.open:
        with mentions_tab:
            mentions_view(name, doc)
    if extract_tab.open:
        with extract_tab:
            extract_view(name, doc, model)
    if compare_tab.open:
        with compare_tab:
            compare_view(name, doc, docs)
    jobs_list(name)


main()
