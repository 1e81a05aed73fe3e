"""Evaluation datasets: a folder of documents plus questions with what counts as relevant.

Two layouts are read:
- docstack's own (as ``shared/data/squad-dev``): ``docs/`` and ``questions.jsonl`` with ``id``,
  ``question``, ``answers``, ``answerable``, ``source`` and ``paragraph`` (0-based index of the
  gold paragraph among the blank-line-separated blocks after the title; without it a question
  counts for answers only, as in ``bench/data/python-docs``, whose documents are HTML);
- BEIR: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/*.tsv``; the corpus is written out as one
  text file per document so that it goes through the same ingestion as anything else."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docstack.console import DocstackError
from docstack.rag.retrieve import Hit

# A hit is relevant to a gold paragraph when it covers this share of it, or the paragraph covers
# this share of the hit (chunks are smaller or larger than paragraphs).
OVERLAP = 0.5


@dataclass
class Question:
    id: str
    text: str
    answers: list[str]
    answerable: bool
    # gold unit -> graded relevance (a paragraph span "file#start-end", or a BEIR doc id)
    gold: dict[str, float] = field(default_factory=dict)


@dataclass
class Dataset:
    name: str
    docs: Path
    questions: list[Question]
    unit_of: Callable[[Hit], list[str]]  # the gold units a hit covers

    def sample(self, limit: int | None, seed: int = 0) -> list[Question]:
        """A seeded sample, so every document and both kinds of question are represented."""
        if not limit or limit >= len(self.questions):
            return list(self.questions)
        return random.Random(seed).sample(self.questions, limit)


def load(path: Path, cache: Path) -> Dataset:
    if (path / "questions.jsonl").is_file() and (path / "docs").is_dir():
        return _load_docstack(path)
    if (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file():
        return _load_beir(path, cache / f"beir-{path.name}")
    raise DocstackError(f"{path} is not a dataset: expected docs/ + questions.jsonl, or BEIR's corpus.jsonl")


def _load_docstack(path: Path) -> Dataset:
    docs = path / "docs"
    spans: dict[str, list[tuple[int, int]]] = {}
    texts: dict[str, str] = {}
    for file in sorted(docs.iterdir()):
        text = file.read_text(encoding="utf-8")
        texts[file.name] = text
        spans[file.name] = _paragraph_spans(text)
    questions = []
    for n, line in enumerate((path / "questions.jsonl").read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
            gold = {}
            # Without a gold paragraph a question counts for answers only, not for retrieval.
            if q.get("answerable", True) and "paragraph" in q:
                start, end = spans[q["source"]][q["paragraph"]]
                gold = {f"{q['source']}#{start}-{end}": 1.0}
            text = q["question"]
        except (ValueError, KeyError, IndexError) as exc:
            raise DocstackError(f"questions.jsonl line {n}: {exc.__class__.__name__}: {exc}") from None
        questions.append(Question(str(q["id"]), text, list(q.get("answers", [])),
                                  bool(q.get("answerable", True)), gold))

    def unit_of(hit: Hit) -> list[str]:
        name = Path(hit.source).name
        text = texts.get(name)
        at = text.find(hit.text) if text is not None else -1
        if at < 0:
            return []
        lo, hi = at, at + len(hit.text)
        units = []
        for start, end in spans[name]:
            overlap = min(hi, end) - max(lo, start)
            if overlap > 0 and (overlap >= OVERLAP * (end - start) or overlap >= OVERLAP * (hi - lo)):
                units.append(f"{name}#{start}-{end}")
        return units

    return Dataset(path.name, docs, questions, unit_of)


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the blank-line-separated blocks after the `# Title` line."""
    spans, pos = [], 0
    for block in text.split("\n\n"):
        start = text.index(block, pos)
        pos = start + len(block)
        if block.strip() and not (not spans and block.lstrip().startswith("#")):
            spans.append((start, pos))
    return spans


def _load_beir(path: Path, cache: Path) -> Dataset:
    docs = cache / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    with open(path / "corpus.jsonl", encoding="utf-8") as corpus:
        for line in corpus:
            doc = json.loads(line)
            name = f"{_safe(doc['_id'])}.txt"
            names[name] = doc["_id"]
            target = docs / name
            body = (doc.get("title", "") + "\n\n" + doc.get("text", "")).strip() + "\n"
            if not target.is_file() or target.read_text(encoding="utf-8") != body:
                target.write_text(body, encoding="utf-8")
    qrels: dict[str, dict[str, float]] = {}
    split = next((p for p in sorted((path / "qrels").glob("*.tsv")) if p.stem == "test"), None) or next(
        iter(sorted((path / "qrels").glob("*.tsv"))), None)
    if split is None:
        raise DocstackError(f"{path}/qrels has no .tsv file")
    with open(split, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if float(row["score"]) > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = float(row["score"])
    questions = []
    with open(path / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q["_id"] in qrels:
                questions.append(Question(q["_id"], q["text"], [], True, qrels[q["_id"]]))

    def unit_of(hit: Hit) -> list[str]:
        doc = names.get(Path(hit.source).name)
        return [doc] if doc else []

    return Dataset(path.name, docs, questions, unit_of)


def _safe(doc_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id)
