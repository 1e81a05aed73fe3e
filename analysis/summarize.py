"""`docstack summarize`: a summary whose every sentence cites its pages.

A section or a page range: its passages packed in document order into requests that fit the
model's window (counted with its tokenizer), each summarised (map), then the partial summaries
joined into one (reduce) when there are several and they fit one request. Each sentence of the
result is attributed to the pages it rests on by its words, else by meaning (docstack.rag.cite);
a sentence no page supports is kept, marked `supported: false`.

The whole document: on a small CPU model (`Writer.budgeted`) reading 1,000 pages costs hours, so
it is summarised from what ingest already knows (the outline and each section's representative
passages), in at most `WHOLE_CALLS` requests of at most `WHOLE_UNIT_TOKENS` tokens; a large-window
model reads every page (`complete`). Either way it is a job: checkpointed, resumable, cached."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from docstack.analysis.documents import Passage, find, passages, structure
from docstack.analysis.jobs import Job, Jobs, Unit, job_id
from docstack.analysis.writer import Packed, Writer, pack
from docstack.index.base import ChunkIndex, DocumentRecord
from docstack.ingest.structure import Structure
from docstack.rag.cite import attribute

from docstack.console import DocstackError
from docstack.text import sentence_spans, without_markers

Embed = Callable[[Sequence[str]], np.ndarray]

PROMPT_VERSION = "summary-2"  # bump with every change to the prompts: cached results are keyed by it
UNIT_SENTENCES = 3
SUMMARY_SENTENCES = 6
ANSWER_TOKENS = 160  # three sentences; a 0.5B model that copies instead is cut, not waited for
# The whole document on a CPU model: 16 requests of <= 1,500 tokens take ~8 minutes with the
# 0.5B model on 2 cores (~30 s each, measured in bench/longdoc), inside the 15 minutes allowed.
WHOLE_CALLS = 16
WHOLE_UNIT_TOKENS = 1500
# A document without an outline is read whole on a CPU model up to this many pages (~1 minute a page
# at worst); beyond it, name a section or pages.
WHOLE_PAGES_READ = 30

_LIST_ITEM = re.compile(r"^(?:\d+[.)]|[-*•])\s")  # a small model lists titles instead of writing sentences
_ECHO = re.compile(r"\bin at most \d+ sentences\b|^(?:this|the) (?:part|outline) of\b", re.IGNORECASE)
SYSTEM = ("You summarise documents faithfully. Use only facts stated in the given text. Write plain sentences, "
          "no lists, no headings, no preamble.")


@dataclass
class Scope:
    title: str  # what is summarised, for the prompt and the result
    first: int | None
    last: int | None
    section_path: str | None = None
    whole: bool = False

    def to_json(self) -> dict:
        return {"title": self.title, "pages": [self.first, self.last] if self.first else None, "whole": self.whole}


def summarize(index: ChunkIndex, embed: Embed, writer: Writer, name: str, collection: str,
              section: str | None = None, pages: tuple[int, int] | None = None, complete: bool = False,
              on_progress: Callable[[Job], None] | None = None) -> dict:
    started = time.monotonic()
    doc = find(index, name, collection)
    tree = structure(index, doc)
    scope = _scope(doc, tree, section, pages)
    if scope.whole and writer.budgeted and not complete and (tree.sections or doc.pages > WHOLE_PAGES_READ):
        method, units = "outline", _outline_units(tree, writer)
    else:
        method = "pages"
        chosen = _passages_in(index, doc, scope)
        if not chosen:
            raise DocstackError(f"{doc.source}: no text in {scope.title}")
        groups = pack(chosen, writer.count, writer.room(ANSWER_TOKENS))
        units = [_PagesUnit(group, n) for n, group in enumerate(groups)]
    params = {"scope": scope.to_json(), "method": method}
    job = Job(job_id("summarize", doc.sha256, params, writer.model), "summarize", doc.source, params, writer.model)
    jobs = Jobs(index)

    def work(unit: Unit) -> dict:
        return {"text": writer.complete(_map_prompt(scope, units_by_key[unit.key]), ANSWER_TOKENS)}

    units_by_key = {u.key: u for u in units}
    results = jobs.run(job, [Unit(u.key, u.tokens) for u in units], doc.sha256, PROMPT_VERSION, work, on_progress)
    sentences = []
    for unit, result in zip(units, results):
        sentences += _attributed(result["text"], unit.evidence, embed)
    if len(units) > 1:
        sentences = _reduced(sentences, scope, writer, embed, job, jobs, doc) or sentences
    jobs.finish(job)
    for s in sentences:
        s["page_labels"] = [tree.label(p) for p in s["pages"]]
    return {"document": doc.source, "scope": scope.to_json(), "method": method, "model": writer.model,
            "summary": " ".join(s["text"] for s in sentences), "sentences": sentences,
            "supported": round(sum(s["supported"] for s in sentences) / len(sentences), 3) if sentences else None,
            "job": job.id, "model_calls": job.model_calls, "cached_units": job.cached, "units": len(units),
            "seconds": round(time.monotonic() - started, 1)}


# -- scope ------------------------------------------------------------------------------------
def _scope(doc: DocumentRecord, tree: Structure, section: str | None, pages: tuple[int, int] | None) -> Scope:
    if section:
        index = _section_index(doc, tree, section)
        s = tree.sections[index]
        return Scope(s.title, s.page, s.end_page, s.path)
    if pages:
        if pages[0] > doc.pages:
            raise DocstackError(f"{doc.source} has {doc.pages} pages; --pages {pages[0]}-{pages[1]} is past its end")
        return Scope(f"pages {pages[0]}-{min(pages[1], doc.pages)}", pages[0], min(pages[1], doc.pages))
    return Scope(doc.source.rsplit("/", 1)[-1], 1 if doc.pages > 1 else None, doc.pages if doc.pages > 1 else None,
                 whole=True)


def _section_index(doc: DocumentRecord, tree: Structure, title: str) -> int:
    wanted = " ".join(title.split()).casefold()
    exact = [i for i, s in enumerate(tree.sections) if s.title.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [i for i, s in enumerate(tree.sections) if wanted in s.title.casefold()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise DocstackError(f"{doc.source} has no section titled '{title}'; `docstack outline` lists them")
    names = "; ".join(f"{tree.sections[i].title} (page {tree.sections[i].page})" for i in partial[:6])
    raise DocstackError(f"'{title}' matches {len(partial)} sections of {doc.source} ({names}); name one exactly")


def _passages_in(index: ChunkIndex, doc: DocumentRecord, scope: Scope) -> list[Passage]:
    chunks = index.chunks(doc.path)
    if scope.section_path and scope.first is None:  # no pages: the section and those under it
        prefix = scope.section_path
        chunks = [c for c in chunks if c.section and (c.section == prefix or c.section.startswith(prefix + " > "))]
    elif scope.first is not None and not scope.whole:
        chunks = [c for c in chunks if c.page is not None and scope.first <= c.page <= scope.last]
    return passages(chunks)


# -- units ------------------------------------------------------------------------------------
class _PagesUnit:
    """Packed pages: the model reads them; their passages are the evidence its sentences cite."""

    def __init__(self, packed: Packed, ordinal: int):
        first, last = packed.pages
        # Chunk ids change when a document is ingested again; its hash (in every cache key), the
        # pages, the unit's place and its size do not.
        self.key = f"pages:{first}-{last}:{ordinal}:{packed.tokens}"
        self.tokens = packed.tokens
        self.text = packed.text
        self.evidence = [(p.text, p.page) for p in packed.passages]


@dataclass
class _OutlineUnit:
    """Sections told by their titles and representative passages, for a budgeted whole-document pass."""

    key: str
    tokens: int
    text: str
    evidence: list[tuple[str, int | None]]


def _outline_units(tree: Structure, writer: Writer) -> list[_OutlineUnit]:
    if not tree.sections:
        raise DocstackError(f"the document has no outline to summarise from and more than {WHOLE_PAGES_READ} pages; "
                            f"summarise --pages A-B instead, or pass --complete to read every page (hours on a CPU)")
    tops = [i for i, s in enumerate(tree.sections) if s.level == 1]
    if len(tops) < 3:
        tops = [i for i, s in enumerate(tree.sections) if s.level <= 2]
    blocks = []
    for n, first in enumerate(tops):
        stop = tops[n + 1] if n + 1 < len(tops) else len(tree.sections)
        lines, evidence = [], []
        for i in range(first, stop):
            s = tree.sections[i]
            lines.append(("  " * (s.level - 1)) + s.title)  # pages stay out: a small model copies them
            for sentence in tree.highlights.get(i, []):
                lines.append(("  " * s.level) + sentence)
                evidence.append((sentence, s.page))
        blocks.append(("\n".join(lines), evidence, tree.sections[first].title))
    room = min(writer.room(ANSWER_TOKENS), WHOLE_UNIT_TOKENS)
    per_call = max(1, -(-len(blocks) // WHOLE_CALLS))  # adjacent chapters share a request when there are many
    units = []
    for start in range(0, len(blocks), per_call):
        group = blocks[start:start + per_call]
        text = _fit("\n\n".join(b[0] for b in group), writer.count, room)
        units.append(_OutlineUnit(f"outline:{group[0][2]}:{len(group)}", writer.count(text), text,
                                  [e for b in group for e in b[1]]))
    return units


def _fit(text: str, count: Callable[[str], int], room: int) -> str:
    """The outline text's first lines that fit: its section titles come before the passages."""
    lines = text.split("\n")
    while len(lines) > 1 and count("\n".join(lines)) > room:
        lines = lines[: max(1, int(len(lines) * 0.85))]
    return "\n".join(lines)


# -- prompts and citing ---------------------------------------------------------------------------
def _map_prompt(scope: Scope, unit) -> list[dict]:
    if isinstance(unit, _OutlineUnit):
        ask = (f"Below are the section titles of part of {scope.title}, each followed by key sentences from it. "
               f"In at most {UNIT_SENTENCES} sentences, say what this part covers.")
    else:
        ask = f"Summarise this part of {scope.title} in at most {UNIT_SENTENCES} sentences."
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{ask}\n\n{unit.text}\n\nSummary:"}]


def _attributed(text: str, evidence: list[tuple[str, int | None]], embed: Embed) -> list[dict]:
    """The model's sentences, each with the pages of the evidence it rests on."""
    text = " ".join(without_markers(text).split())
    if not text or not evidence:
        return []
    texts = [e[0] for e in evidence]
    vectors = embed(texts)
    paged = any(page is not None for _, page in evidence)
    sentences = []
    for start, end in sentence_spans(text):
        sentence = text[start:end].strip()
        if (len(sentence.split()) < 4 or _LIST_ITEM.match(sentence) or _ECHO.search(sentence)
                or (end >= len(text) and not _ended(sentence))):
            continue  # a fragment, a list item, the instructions echoed, or a sentence cut off at the token limit
        cited = attribute(sentence, texts, embed, vectors)
        pages = sorted({evidence[n - 1][1] for n in cited.numbers if evidence[n - 1][1] is not None})
        # supported: it rests on the text, and (in a paged document) names a page it rests on
        sentences.append({"text": sentence, "pages": pages,
                          "supported": bool(cited.numbers) and (bool(pages) or not paged)})
    return sentences


def _ended(sentence: str) -> bool:
    """A sentence that ends as one: final punctuation, and no bracket left open ("see (p.")."""
    return sentence.rstrip("\"')»”’ ").endswith((".", "!", "?", "…")) and sentence.count("(") <= sentence.count(")")


def _reduced(sentences: list[dict], scope: Scope, writer: Writer, embed: Embed, job: Job, jobs: Jobs,
             doc: DocumentRecord) -> list[dict] | None:
    """The partial summaries joined into one of SUMMARY_SENTENCES, when they fit one request; its
    sentences cite the pages of the partial sentences they rest on."""
    partial = "\n".join(s["text"] for s in sentences)
    if writer.count(partial) > writer.room(ANSWER_TOKENS) or len(sentences) <= SUMMARY_SENTENCES:
        return None
    prompt = [{"role": "system", "content": SYSTEM},
              {"role": "user", "content": f"These are summaries of consecutive parts of {scope.title}. Combine them into "
                                          f"one summary of at most {SUMMARY_SENTENCES} sentences.\n\n{partial}\n\n"
                                          f"Summary:"}]
    unit = Unit(f"reduce:{len(sentences)}", writer.count(partial))
    [result] = jobs.run(job, [unit], doc.sha256 + ":" + partial, PROMPT_VERSION,
                        lambda _: {"text": writer.complete(prompt, ANSWER_TOKENS)})
    evidence = [(s["text"], page) for s in sentences for page in (s["pages"] or [None])]
    return _attributed(result["text"], evidence, embed) or None
