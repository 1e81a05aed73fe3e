"""`docstack extract`: one row per item a document states, with the fields asked for, a verbatim
quote and its page.

The model reads only the sentences worth reading, numbered, in document order, in requests that
fit its window: those that hold every field a pattern recognises (a date, an amount: found in the
whole document without a model), and those of the passages a hybrid search for the fields finds.
It answers one JSON object per line naming a sentence by its number; the sentence is the row's
quote, so quotes are verbatim by construction, and a row none of whose values occurs in the
sentence it names is dropped, so no row rests on invented text."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from docstack.analysis.documents import Passage, find, passages, structure
from docstack.analysis.jobs import Job, Jobs, Unit, job_id
from docstack.analysis.writer import Writer
from docstack.index.base import ChunkIndex, Filters

from docstack.console import DocstackError
from docstack.text import sentences

PROMPT_VERSION = "extract-4"  # bump with every change to the prompt: cached results are keyed by it
ANSWER_TOKENS = 400
# Passages read per field (hybrid search), and at most this many in all: ~30 chunks are about a
# minute of the 0.5B model on 2 cores.
PER_FIELD = 12
MAX_CHUNKS = 36
# Sentences per request: the 0.5B model answers a few objects and stops (20 sentences in one
# request: 1 row of 20 items; bench/longdoc/extraction.py).
SENTENCES_PER_REQUEST = 2

Search = Callable[[str, int, Filters], list[int]]  # query, k, filters -> chunk ids

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
TYPED = {
    "date": re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\s+\d{{4}}\b|\b{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}\b|"
                       r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b", re.IGNORECASE),
    "amount": re.compile(r"(?:[$€£¥]|\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD|INR|CNY)\b)\s?\d[\d,.]*|"
                         r"\b\d[\d,.]*\s?(?:USD|EUR|GBP|CHF|dollars|euros|pounds)\b", re.IGNORECASE),
    "percentage": re.compile(r"\b\d+(?:[.,]\d+)?\s?(?:%|per ?cent)", re.IGNORECASE),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b"),
}
# A field is of a kind when its name has one of these words.
FIELD_KINDS = {
    "date": {"date", "dates", "deadline", "due", "day", "when"},
    "amount": {"amount", "amounts", "price", "fee", "fees", "cost", "costs", "sum", "payment", "total", "salary"},
    "percentage": {"percentage", "percent", "rate"},
    "email": {"email", "mail"},
}


def parse_fields(fields: str) -> list[str]:
    names = [" ".join(f.split()) for f in fields.split(",")]
    names = [n for n in names if n]
    if not names:
        raise DocstackError('--fields names nothing; give them comma-separated, e.g. --fields "party, date, amount"')
    if len(set(n.lower() for n in names)) != len(names):
        raise DocstackError(f"--fields names a field twice: {fields}")
    return names


def extract(index: ChunkIndex, search: Search, writer: Writer, name: str, collection: str, fields: list[str],
            on_progress: Callable[[Job], None] | None = None) -> dict:
    started = time.monotonic()
    doc = find(index, name, collection)
    tree = structure(index, doc)
    candidates, chunks_read = _candidates(index, search, doc.path, doc.source, fields)
    groups = _numbered(candidates, writer.count, writer.room(ANSWER_TOKENS))
    params = {"fields": fields}
    job = Job(job_id("extract", doc.sha256, params, writer.model), "extract", doc.source, params, writer.model)
    jobs = Jobs(index)
    units = [Unit(f"{g[0][0]}-{g[-1][0]}:{len(g)}", sum(writer.count(t) for _, _, t in g)) for g in groups]
    by_key = {u.key: g for u, g in zip(units, groups)}

    def work(unit: Unit) -> dict:
        return {"text": writer.complete(_prompt(fields, by_key[unit.key]), ANSWER_TOKENS)}

    results = jobs.run(job, units, doc.sha256, PROMPT_VERSION, work, on_progress)
    rows, dropped = [], 0
    for group, result in zip(groups, results):
        numbered = {n: (passage, sentence) for n, passage, sentence in group}
        for item in _items(result["text"], fields):
            found = _sentence_of(item, fields, numbered)
            if found is None:
                dropped += 1
                continue
            passage, sentence = found
            at = tree.section_at(passage.page, passage.section)
            rows.append({**{f: item.get(f) for f in fields}, "quote": sentence, "page": passage.page,
                         "page_label": tree.label(passage.page),
                         "section": tree.sections[at].title if at is not None else passage.section})
    jobs.finish(job)
    rows = sorted(_unique(rows), key=lambda r: r["page"] or 0)  # stable: the model's order within a page
    return {"document": doc.source, "fields": fields, "rows": rows, "dropped": dropped, "chunks_read": chunks_read,
            "sentences_read": len(candidates), "model": writer.model, "job": job.id, "model_calls": job.model_calls,
            "seconds": round(time.monotonic() - started, 1)}


def to_csv(result: dict, path: Path | None = None) -> str:
    out = io.StringIO()
    columns = [*result["fields"], "quote", "page", "page_label", "section"]
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(result["rows"])
    if path is not None:
        try:
            path.write_text(out.getvalue(), encoding="utf-8")
        except OSError as exc:
            raise DocstackError(f"--csv {path}: cannot be written ({exc.strerror})") from exc
    return out.getvalue()


def _candidates(index: ChunkIndex, search: Search, path: str, source: str,
                fields: list[str]) -> tuple[list[tuple[Passage, str]], int]:
    """The sentences worth reading, in document order, and how many chunks they came from.

    Fields of a kind a pattern recognises (a date, an amount, a percentage, an e-mail address)
    pick their sentences from the whole document without a model: those that hold every such
    field. The passages a hybrid search for the fields finds add their sentences that hold at
    least one (all of them when no field has a pattern)."""
    typed = [TYPED[kind] for field in fields if (kind := _kind(field))]
    chunks = index.chunks(path)
    found: list[int] = []
    for query in [", ".join(fields), *fields]:
        found += [i for i in search(query, PER_FIELD, Filters(source=source)) if i not in found]
    searched = set(found[:MAX_CHUNKS])
    chosen: list[tuple[Passage, str]] = []
    used = set()
    for passage in passages(chunks):
        from_search = bool(searched & set(passage.chunk_ids))
        for sentence in (" ".join(s.split()) for s in sentences(passage.text)):
            hits = sum(bool(p.search(sentence)) for p in typed)
            if (typed and hits == len(typed)) or (from_search and (hits or not typed)):
                chosen.append((passage, sentence))
                used |= set(passage.chunk_ids)
    return chosen, len(used)


def _kind(field: str) -> str | None:
    words = set(re.findall(r"[a-z]+", field.lower()))
    return next((kind for kind, names in FIELD_KINDS.items() if words & names), None)


def _numbered(candidates: list[tuple[Passage, str]], count: Callable[[str], int],
              room: int) -> list[list[tuple[int, Passage, str]]]:
    """The sentences numbered from 1, in groups that fit one request."""
    groups: list[list[tuple[int, Passage, str]]] = [[]]
    used = 0
    for n, (passage, sentence) in enumerate(candidates, start=1):
        size = count(sentence) + 8
        if groups[-1] and (used + size > room or len(groups[-1]) >= SENTENCES_PER_REQUEST):
            groups.append([])
            used = 0
        groups[-1].append((n, passage, sentence))
        used += size
    return [g for g in groups if g]


def _prompt(fields: list[str], group: list[tuple[int, Passage, str]]) -> list[dict]:
    lines = "\n".join(f"[{n}] {sentence}" for n, _, sentence in group)
    example = json.dumps({"n": group[0][0], **{f: f"<{f}>" for f in fields}})
    return [{"role": "system", "content": "You extract facts from documents into JSON. Copy values exactly from the "
                                          "text. Never invent an item."},
            {"role": "user", "content": f"Below are numbered sentences from a document. Find each sentence that "
                                        f"states {', '.join(fields)}. For each one write a JSON object on its own "
                                        f"line with its number n and the values copied from it, like:\n{example}\n"
                                        f"Use null for what the sentence does not say. If no sentence states one, "
                                        f"write NONE.\n\n{lines}\n\nJSON:"}]


_OBJECT = re.compile(r"\{[^{}]*\}")


def _items(text: str, fields: list[str]) -> list[dict]:
    """The JSON objects in the model's answer (other text ignored), fields matched by name."""
    items = []
    lowered = {f.lower(): f for f in fields}
    for raw in _OBJECT.findall(text):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(value, dict):
            continue
        items.append({lowered.get(k.lower(), k): (None if v in ("", "null") else v) for k, v in value.items()})
    return items


def _flat(text: str) -> str:
    return " ".join(text.split()).casefold()


def _sentence_of(item: dict, fields: list[str], numbered: dict) -> tuple[Passage, str] | None:
    """The sentence a row comes from: the one it names by number, if a value of the row is found
    in it word for word (a small model also names sentences that state nothing of the kind), else
    one holding the row's quote."""
    try:
        n = int(item.get("n"))
    except (TypeError, ValueError):
        n = None
    values = [_flat(str(item[f])) for f in fields if item.get(f) not in (None, "") and len(str(item[f])) >= 2]
    if n in numbered and values and any(v in _flat(numbered[n][1]) for v in values):
        return numbered[n]
    quote = _flat(str(item.get("quote") or ""))
    if len(quote) >= 12:
        return next((found for found in numbered.values() if quote in _flat(found[1])), None)
    return None


def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        key = (_flat(row["quote"]), row["page"])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out
