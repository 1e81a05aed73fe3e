"""Questions that top-k retrieval cannot answer, answered from the whole document.

"How many times does the manual mention X?", "list every page that mentions X", "summarise
chapter 4" and "what changed between v1 and v2?" need every occurrence, every page of a section or
both documents, not the five passages closest to the question. `WholeDocument.run` recognises
them and answers through the analysis operations, saying so in the answer's notices; any other
question (or one whose document or term it cannot tell) returns None and takes the usual path."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docstack.analysis.compare import compare
from docstack.analysis.documents import find
from docstack.analysis.mentions import Embed, mentions
from docstack.analysis.summarize import summarize
from docstack.analysis.writer import Writer
from docstack.index.base import ChunkIndex, DocumentRecord, Filters
from docstack.rag.answer import Answer, Citation

from docstack.console import DocstackError
from docstack.text import page_reference

_COUNT = re.compile(r"\b(how many times|how often|number of times|count (?:the )?(?:mentions|occurrences))\b", re.IGNORECASE)
_EVERY = re.compile(r"\b(list (?:all|every)|every (?:mention|place|page|time|occurrence|section)|all (?:the )?"
                    r"(?:mentions|occurrences|places|pages)|mentioned anywhere|anywhere in)\b", re.IGNORECASE)
_SUMMARY = re.compile(r"^\W*(?:please\s+|can you\s+|could you\s+)?(?:summari[sz]e|sum up|give (?:me )?(?:a |an )?"
                      r"(?:short |brief )?(?:summary|overview))\b", re.IGNORECASE)
_COMPARE = re.compile(r"\b(compare|what changed between|what(?:'s| is| are) the differences? between|"
                      r"differences? between)\b", re.IGNORECASE)
_IS_MENTIONED = re.compile(r"\b(?:is|are|was|were)\s+(?:the\s+(?:word|term|phrase)\s+)?(.+?)\s+(?:ever\s+)?"
                           r"(?:mentioned|used|referred to|named)\b", re.IGNORECASE)
_QUOTED = re.compile(r"[\"“'‘]([^\"”'’]{2,80})[\"”'’]")
_TERM_AFTER = re.compile(r"\b(?:mentions? of|mentions?|mentioned|occurrences? of|says?|uses?|refers? to|"
                         r"contains?|the (?:word|term|phrase))\s+(?:the (?:word|term|phrase)\s+)?(.+)$", re.IGNORECASE)
_TRAILING = re.compile(r"\s*(?:\b(?:in|within|throughout|across) (?:the |this |all )?(?:whole |entire )?"
                       r"(?:document|manual|handbook|file|text|pdf|guide|collection|documents)s?\b.*|\banywhere\b.*|"
                       r"[?.!]+)\s*$", re.IGNORECASE)
_SECTION = re.compile(r"\b(?:chapter|section|part|appendix)\s+([\w.]+)|\b(?:the )?(?:section|chapter) (?:on|about) (.+?)"
                      r"[?.!]*$", re.IGNORECASE)
log = logging.getLogger(__name__)

MAX_PAGES_CITED = 10
NOTICE = "answered from the whole document ({what}), not from the top {k} passages"


@dataclass
class WholeDocument:
    index: Callable[[], ChunkIndex]
    embed: Embed
    writer: Callable[[str | None], Writer]
    collection: str

    def run(self, question: str, filters: Filters | None, k: int, model: str | None) -> Answer | None:
        try:
            if _COMPARE.search(question):
                return self._compare(question, k)
            if _SUMMARY.search(question):
                return self._summary(question, filters, k, model)
            if _COUNT.search(question) or _EVERY.search(question):
                return self._mentions(question, filters, k)
        except _NotThis:
            return None
        except DocstackError as exc:  # the usual path may still answer it
            log.info("whole-document answer not possible (%s); answering from the top passages", exc)
            return None
        return None

    # -- every mention -------------------------------------------------------------------------
    def _mentions(self, question: str, filters: Filters | None, k: int) -> Answer | None:
        term = _term(question)
        if not term:
            return None
        index = self.index()
        doc = self._document(index, question, filters, required=False)
        found = mentions(index, self.embed, term, self.collection, doc.path if doc else None, related=0)
        where = Path(doc.source).name if doc else f"collection {self.collection}"
        exact = found["mentions"]
        if not exact:
            return _answer(f"“{term}” does not occur in {where}.", [], k, "every occurrence of the term")
        pages: dict[tuple[str, int | None], list[dict]] = {}
        for m in exact:
            pages.setdefault((m["source"], m["page"]), []).append(m)
        citations, parts = [], []
        for n, ((source, page), group) in enumerate(list(pages.items())[:MAX_PAGES_CITED], start=1):
            first = group[0]
            citations.append(Citation(n, first["chunk_id"], source, page, first["quote"], first["page_label"]))
            times = f" ({len(group)} times)" if len(group) > 1 else ""
            parts.append(f"{_place(source, page, first['page_label'], doc is None)}{times} [{n}]")
        more = len(pages) - MAX_PAGES_CITED
        tail = f", and {more} more pages (`docstack mentions` lists them all)" if more > 0 else ""
        text = (f"“{term}” occurs {found['count']} time{'s' * (found['count'] != 1)} in {where}, on "
                f"{len(pages)} page{'s' * (len(pages) != 1)}: " + ", ".join(parts) + tail + ".")
        return _answer(text, citations, k, "every occurrence of the term")

    # -- summaries ----------------------------------------------------------------------------------
    def _summary(self, question: str, filters: Filters | None, k: int, model: str | None) -> Answer | None:
        index = self.index()
        doc = self._document(index, question, filters, required=True)
        section = _section(question)
        try:
            result = summarize(index, self.embed, self.writer(model), doc.path, self.collection,
                               section=_section_title(index, doc, section) if section else None)
        except DocstackError as exc:
            if "no section" in str(exc) or "matches" in str(exc):
                raise _NotThis from exc
            raise
        citations: list[Citation] = []
        numbers: dict[int, int] = {}
        chunks = {c.page: c for c in reversed(index.chunks(doc.path))}  # each page's first chunk
        sentences = []
        for s in result["sentences"]:
            marks = []
            for page in s["pages"]:
                if page not in numbers and page in chunks:
                    numbers[page] = len(citations) + 1
                    chunk = chunks[page]
                    citations.append(Citation(numbers[page], chunk.chunk_id, chunk.source, page, chunk.text,
                                              s["page_labels"][s["pages"].index(page)]))
                if page in numbers:
                    marks.append(f"[{numbers[page]}]")
            sentences.append(_marked(s["text"], marks))
        what = f"a summary of {result['scope']['title']}, {result['units']} parts read"
        return _answer(" ".join(sentences), citations, k, what, model=result["model"])

    # -- comparison ---------------------------------------------------------------------------------
    def _compare(self, question: str, k: int) -> Answer | None:
        index = self.index()
        named = _named_documents(index.documents(), question)
        if len(named) != 2:
            raise _NotThis
        result = compare(index, named[0].path, named[1].path, self.collection)
        lines = [f"{len(result['changed'])} sections changed, {len(result['added'])} added and "
                 f"{len(result['removed'])} removed between {Path(result['a']).name} and {Path(result['b']).name}."]
        lines += [f"Added: {s['title']}." for s in result["added"][:5]]
        lines += [f"Removed: {s['title']}." for s in result["removed"][:5]]
        lines += [f"Changed: {c['title']}: {c['summary']}." for c in result["changed"][:5]]
        return _answer(" ".join(lines), [], k, "the two documents compared section by section")

    def _document(self, index: ChunkIndex, question: str, filters: Filters | None,
                  required: bool) -> DocumentRecord | None:
        """The document the question is about: the --source filter's, one the question names, or
        the collection's only one."""
        documents = index.documents()
        if filters is not None and filters.source:
            return find(index, filters.source, self.collection)
        named = _named_documents(documents, question)
        if len(named) == 1:
            return named[0]
        if len(documents) == 1:
            return documents[0]
        if required:
            raise _NotThis
        return None


class _NotThis(Exception):
    """Not a question this module can answer after all: the usual path takes it."""


def _answer(text: str, citations: list[Citation], k: int, what: str, model: str = "docstack") -> Answer:
    return Answer(answer=text, citations=citations, model=model, abstained=False, seconds=0.0,
                  notices=[NOTICE.format(what=what, k=k)])


def _term(question: str) -> str | None:
    quoted = _QUOTED.search(question)
    if quoted:
        return quoted.group(1).strip()
    before = _IS_MENTIONED.search(question)
    after = _TERM_AFTER.search(question)
    if not (before or after):
        return None
    term = before.group(1) if before else _TRAILING.sub("", after.group(1))
    term = re.sub(r"^(?:the|a|an)\s+", "", term.strip(" ,;:"), flags=re.IGNORECASE)  # "the relief valve" counts "relief valve"
    return term if 0 < len(term.split()) <= 6 else None


def _section(question: str) -> str | None:
    match = _SECTION.search(question)
    if not match:
        return None
    return (match.group(1) or match.group(2) or "").strip(" ?.!") or None


def _section_title(index: ChunkIndex, doc: DocumentRecord, wanted: str) -> str:
    """The outline's title for "chapter 4" or "the section on valves"."""
    from docstack.analysis.documents import structure

    tree = structure(index, doc)
    lowered = wanted.casefold()
    for s in tree.sections:
        title = s.title.casefold()
        if title.startswith(lowered + " ") or title == lowered or title.startswith(f"chapter {lowered}"):
            return s.title
    matches = [s.title for s in tree.sections if lowered in s.title.casefold()]
    if len(matches) >= 1:
        return matches[0]
    raise _NotThis


def _named_documents(documents: list[DocumentRecord], question: str) -> list[DocumentRecord]:
    """The documents whose file name (or its stem, with - and _ read as spaces) the question holds."""
    lowered = question.casefold()
    named = []
    for doc in documents:
        name = Path(doc.path).name.casefold()
        stem = Path(doc.path).stem.casefold()
        if name in lowered or (len(stem) >= 4 and (stem in lowered or stem.replace("-", " ").replace("_", " ")
                                                   in lowered)):
            named.append(doc)
    # "manual-v2" names manual-v2.pdf, not also manual.pdf
    return [d for d in named if not any(o is not d and Path(d.path).stem.casefold() in Path(o.path).stem.casefold()
                                        and Path(o.path).stem.casefold() in lowered for o in named)]


def _marked(sentence: str, marks: list[str]) -> str:
    """The sentence with its citation markers before its closing punctuation, as answers have them."""
    if not marks:
        return sentence
    body = sentence.rstrip()
    end = len(body.rstrip(".!?…"))
    return f"{body[:end]} {''.join(marks)}{body[end:]}"


def _place(source: str, page: int | None, label: str | None, with_name: bool) -> str:
    name = f"{Path(source).name}, " if with_name else ""
    if page is None:
        return name.rstrip(", ") or source
    return name + page_reference(page, label)
