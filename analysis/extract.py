"""`docstack extract`: one row per item a document states, with the fields asked for, a verbatim
quote and its page.

The model reads only the passages worth reading: those a hybrid search for the fields (and
each field alone) finds in the document, in document order, packed into requests that fit its
window. It answers one JSON object per line; a row whose quote is not found verbatim in the
passages it was given (spacing and case aside) is dropped, so no row rests on invented text."""

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
from docstack.analysis.writer import Writer, pack
from docstack.console import DocstackError
from docstack.index.base import ChunkIndex, Filters, StoredChunk

PROMPT_VERSION = "extract-2"  # bump with every change to the prompt: cached results are keyed by it
ANSWER_TOKENS = 400
# Passages read per field (hybrid search), and at most this many in all: ~30 chunks are about a
# minute of the 0.5B model on 2 cores.
PER_FIELD = 12
MAX_CHUNKS = 36

Search = Callable[[str, int, Filters], list[int]]  # query, k, filters -> chunk ids


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
    chosen = _chosen(index, search, doc.path, doc.source, fields)
    groups = pack(passages(chosen), writer.count, writer.room(ANSWER_TOKENS))
    params = {"fields": fields}
    job = Job(job_id("extract", doc.sha256, params, writer.model), "extract", doc.source, params, writer.model)
    jobs = Jobs(index)
    by_key = {f"{g.pages[0]}-{g.pages[1]}:{n}:{g.tokens}": g for n, g in enumerate(groups)}  # stable across re-ingest

    def work(unit: Unit) -> dict:
        return {"text": writer.complete(_prompt(fields, by_key[unit.key].text), ANSWER_TOKENS)}

    results = jobs.run(job, [Unit(k, g.tokens) for k, g in by_key.items()], doc.sha256, PROMPT_VERSION, work,
                       on_progress)
    rows, dropped = [], 0
    for group, result in zip(by_key.values(), results):
        for item in _items(result["text"], fields):
            item["quote"], where = _quoted(item, fields, group.passages)
            if where is None:
                dropped += 1
                continue
            at = tree.section_at(where.page, where.section)
            rows.append({**{f: item.get(f) for f in fields}, "quote": item["quote"], "page": where.page,
                         "page_label": tree.label(where.page),
                         "section": tree.sections[at].title if at is not None else where.section})
    jobs.finish(job)
    rows = sorted(_unique(rows), key=lambda r: r["page"] or 0)  # stable: the model's order within a page
    return {"document": doc.source, "fields": fields, "rows": rows, "dropped": dropped, "chunks_read": len(chosen),
            "model": writer.model, "job": job.id, "model_calls": job.model_calls,
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


def _chosen(index: ChunkIndex, search: Search, path: str, source: str, fields: list[str]) -> list[StoredChunk]:
    """The document's chunks a search for the fields finds, in document order."""
    filters = Filters(source=source)
    ids: list[int] = []
    for query in [", ".join(fields), *fields]:
        for chunk_id in search(query, PER_FIELD, filters):
            if chunk_id not in ids:
                ids.append(chunk_id)
    found = index.fetch(ids[:MAX_CHUNKS])
    return sorted((c for c in found.values() if c.path == path), key=lambda c: c.chunk_id)


def _prompt(fields: list[str], text: str) -> list[dict]:
    example = json.dumps({**{f: f"<{f}>" for f in fields}, "quote": "<the sentence that states it, copied exactly>"})
    return [{"role": "system", "content": "You extract facts from documents into JSON. Copy quotes exactly from the "
                                          "text. Never invent an item."},
            {"role": "user", "content": f"Find every item in the text below that states: {', '.join(fields)}.\n"
                                        f"For each item write one JSON object on its own line, like:\n{example}\n"
                                        f"Use null for a field the item does not state. If there is no item, write "
                                        f"NONE.\n\nText:\n{text}\n\nItems:"}]


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


def _verbatim(quote: str, passages: list[Passage]) -> Passage | None:
    """The passage that holds the quote word for word (spacing and case aside)."""
    wanted = _flat(quote.strip().strip('"').strip())
    if len(wanted) < 4:
        return None
    return next((p for p in passages if wanted in _flat(p.text)), None)


def _quoted(item: dict, fields: list[str], passages: list[Passage]) -> tuple[str, Passage | None]:
    """The item's quote and the passage holding it. A small model often fills the quote with the
    example's words, or leaves it out, while a field holds a sentence copied from the text: then
    the longest field value found verbatim is the quote."""
    where = _verbatim(item.get("quote") or "", passages)
    if where is not None:
        return item["quote"], where
    values = sorted((str(item[f]) for f in fields if isinstance(item.get(f), str)), key=len, reverse=True)
    for value in values:
        if len(value.split()) >= 3 and (where := _verbatim(value, passages)) is not None:
            return value, where
    return item.get("quote") or "", None


def _unique(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        key = (_flat(row["quote"]), row["page"])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out
