"""Documents: upload files, see what a collection holds, delete documents, re-sync a folder,
create and delete collections. Ingestion is `DocStack.ingest`, the CLI's code path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from docstack import DocstackError, Grant, IngestReport, Progress
from docstack.ui.common import collection, current_user, select_collection, user_docstack


class FileProgress:
    """One progress bar per file, and one for the whole batch, fed by the ingest callback."""

    def __init__(self, names: list[str]):
        self.overall = st.progress(0.0, text=f"0 of {len(names)} files")
        self.bars = {name: st.progress(0.0, text=f"{name}: waiting") for name in names}

    def update(self, p: Progress) -> None:
        name = Path(p.current).name
        if name in self.bars:
            self.bars[name].progress(p.current_share, text=f"{name}: " + (
                "read" if p.current_share >= 1 else f"{p.current_share:.0%} of its pages"))
        self.overall.progress(p.share,
                              text=f"{p.files_done} of {p.files_total} files · {p.pages} pages · {p.chunks} chunks")

    def finish(self, report: IngestReport) -> None:
        failed = {Path(e["path"]).name: e["error"] for e in report.errors}
        for name, bar in self.bars.items():
            bar.progress(1.0, text=f"{name}: failed" if name in failed else f"{name}: done")
        self.overall.progress(1.0, text=summary(report))


def summary(report: IngestReport) -> str:
    extra = f", {report.unchanged} already there" if report.unchanged else ""
    failed = f", {len(report.errors)} failed" if report.errors else ""
    return (f"Added {report.files} files ({report.pages} pages, {report.chunks} chunks){extra}{failed}"
            f" in {report.seconds:.1f} s")


def show_report(report: IngestReport) -> None:
    (st.warning if report.errors else st.success)(summary(report))
    for error in report.errors:
        st.error(f"{Path(error['path']).name}: {error['error']}")
    for warning in report.warnings:
        st.warning(f"{Path(warning['path']).name}: {warning['warning']}")


def upload(name: str) -> None:
    files = st.file_uploader("Drop documents here (PDF, Markdown, HTML, DOCX, text)", accept_multiple_files=True,
                             key=f"uploader-{st.session_state.get('uploads', 0)}")
    done: set[str] = st.session_state.setdefault("uploaded_ids", set())
    new = [f for f in files or [] if f.file_id not in done]
    if new:
        progress = FileProgress([Path(f.name).name for f in new])
        done.update(f.file_id for f in new)
        try:
            report, _ = user_docstack().ingest_uploads([(f.name, f.getvalue()) for f in new], name, progress.update)
        except DocstackError as exc:  # e.g. with identity on, only admins make new collections
            st.error(str(exc))
            return
        progress.finish(report)
        st.session_state["last_report"] = report
        if collection() != name:  # the first upload created the collection: show it picked
            select_collection(name)
            st.rerun()
    if st.session_state.get("last_report") is not None:
        show_report(st.session_state["last_report"])


def documents_table(name: str, writable: bool) -> None:
    ds = user_docstack()
    docs = ds.documents(name)
    st.subheader(f"{len(docs)} documents in {name}")
    if not docs:
        return
    st.dataframe(pd.DataFrame([{
        "file": d.name, "pages": d.pages, "chunks": d.chunks, "size (KB)": round(d.bytes / 1024, 1),
        "ingested": d.ingested_at.strftime("%Y-%m-%d %H:%M"), "path": d.path,
    } for d in docs]), hide_index=True, width="stretch")
    if not writable:
        return
    with st.form("delete-documents", clear_on_submit=True, border=False):
        paths = st.multiselect("Delete documents", [d.path for d in docs], format_func=lambda p: Path(p).name)
        if st.form_submit_button("Delete selected") and paths:
            gone = ds.remove(paths, name)
            st.session_state["flash"] = f"Deleted {len(gone)} documents from {name}."
            st.rerun()


def resync(name: str) -> None:
    with st.form("resync", border=False):
        folder = st.text_input("Re-sync a folder", placeholder="/path/to/folder",
                               help="Adds new and changed files and forgets files gone from the folder.")
        if st.form_submit_button("Sync") and folder.strip():
            path = Path(folder.strip()).expanduser()
            if not path.is_dir():
                st.error(f"{path} is not a folder")
                return
            bar = st.progress(0.0, text=f"syncing {path}")
            report = user_docstack().ingest([path], name, lambda p: bar.progress(
                p.share, text=f"{p.files_done} of {p.files_total} files"), sync=True)
            bar.progress(1.0, text="done")
            show_report(report)
            if report.removed:
                st.info(f"Forgot {report.removed} files no longer in {path}.")


def manage_collections(name: str | None) -> None:
    ds = user_docstack()
    with st.form("new-collection", clear_on_submit=True, border=False):
        new = st.text_input("New collection", placeholder="letters, digits, '.', '_' or '-'")
        if st.form_submit_button("Create") and new.strip():
            try:
                ds.create_collection(new.strip())
            except DocstackError as exc:
                st.error(str(exc))
            else:
                select_collection(new.strip())
                st.rerun()
    if name is not None:
        sure = st.checkbox(f"Yes, delete collection {name} and its index (the files stay)")
        if st.button(f"Delete collection {name}", disabled=not sure, type="primary"):
            try:
                ds.delete_collection(name)
            except DocstackError as exc:
                st.error(str(exc))
                return
            st.session_state["flash"] = f"Deleted collection {name}."
            st.rerun()


def access_editor(name: str, grant: Grant) -> None:
    """Who may read and change the collection: teams and roles from the identity provider's claims."""
    st.caption(f"Owner: {grant.owner or 'none'}. Admins may always read and change it.")
    with st.form("access", border=False):
        fields = {key: st.text_input(label, ", ".join(sorted(getattr(grant, key))), placeholder="comma-separated")
                  for key, label in (("read_teams", "Teams who may read"), ("write_teams", "Teams who may change"),
                                     ("read_roles", "Roles who may read"), ("write_roles", "Roles who may change"))}
        if st.form_submit_button("Save access"):
            try:
                user_docstack().grant(name, **{key: _names(text) for key, text in fields.items()})
            except DocstackError as exc:
                st.error(str(exc))
                return
            st.session_state["flash"] = f"Saved who may read and change {name}."
            st.rerun()


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def main() -> None:
    st.title("Documents")
    if flash := st.session_state.pop("flash", None):
        st.success(flash)
    name = collection()
    if name is None:
        name = user_docstack().settings.collection
        st.info(f"No collections yet: files you add go into a new collection '{name}'.")
        upload(name)
        with st.expander("Collections"):
            manage_collections(None)
        return
    ds, user = user_docstack(), current_user()
    grant = ds.access(name)
    writable = grant.can_write(user)
    if writable:
        upload(name)
    else:
        st.caption(f"You may read {name}; its owner or an admin may add or remove documents.")
    documents_table(name, writable)
    if writable:
        with st.expander("Re-sync a folder"):
            resync(name)
    if ds.settings.identity and (user.is_admin or grant.owner == user.user):
        with st.expander("Who may read and change it"):
            access_editor(name, grant)
    with st.expander("Collections"):
        manage_collections(name)


main()
