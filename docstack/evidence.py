"""What a citation card shows: the cited passage with the sentence that best supports the
answer marked, and for PDFs a picture of the cited page, rendered offline and kept on disk."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from docstack.ingest.readers import ReadError
from docstack.ingest.readers.pdf import open_pdf
from docstack.rag.answer import Answer
from docstack.rag.cite import Embed
from docstack.rag.retrieve import Hit
from docstack.text import cited_numbers, page_reference, sentence_spans, without_markers

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Evidence:
    """One cited chunk: `before + match + after` is the passage, `match` the best sentence."""

    n: int
    source: str
    page: int | None
    section: str | None
    before: str
    match: str
    after: str
    preview: Path | None = None
    page_label: str | None = None  # the printed page label, where the PDF defines labels

    @property
    def name(self) -> str:
        return Path(self.source).name

    @property
    def page_text(self) -> str:
        """"page 17", or "page 17 (printed 1)" where the printed label differs."""
        return page_reference(self.page or None, self.page_label)

    @property
    def where(self) -> str:
        return ", ".join(part for part in (self.name, self.page_text, self.section) if part)


def claims(answer: str, n: int) -> str:
    """The answer's sentences that carry marker [n], markers removed; the whole answer if none do."""
    found = [without_markers(answer[a:b]).strip() for a, b in sentence_spans(answer)
             if n in cited_numbers(answer[a:b])]
    return " ".join(found) or without_markers(answer).strip()


def best_sentence(passage: str, claim: str, embed: Embed) -> tuple[int, int]:
    """Start and end offsets in `passage` of its sentence closest in meaning to `claim`."""
    spans = sentence_spans(passage)
    if len(spans) <= 1 or not claim.strip():
        return (0, len(passage)) if spans else (0, 0)
    vectors = embed([claim] + [passage[a:b].strip() for a, b in spans])
    best = int((vectors[1:] @ vectors[0]).argmax())
    return spans[best]


def evidence(answer: Answer, embed: Embed, previews: PagePreviews | None = None,
             files: Mapping[int, str] | None = None) -> list[Evidence]:
    """One card per citation, in the answer's order; `files` maps chunk ids to their files on
    disk (a citation's source is the path as given at ingestion, maybe relative)."""
    cards = []
    files = files or {}
    for c in answer.citations:
        hit: Hit | None = answer.context[c.n - 1] if 0 < c.n <= len(answer.context) else None
        start, end = best_sentence(c.text, claims(answer.answer, c.n), embed)
        preview = previews.page(Path(files.get(c.chunk_id, c.source)), c.page) if previews and c.page else None
        cards.append(Evidence(c.n, c.source, c.page, hit.section if hit else None,
                              c.text[:start], c.text[start:end], c.text[end:], preview, c.page_label))
    return cards


def _without_blank_bands(image, margin: int = 16):
    """The page without the blank bands above and below its content (a short page is mostly
    white paper), full width so the text keeps its size."""
    from PIL import ImageOps

    box = ImageOps.invert(image.convert("L")).point(lambda v: 255 if v > 16 else 0).getbbox()
    if box is None:
        return image
    return image.crop((0, max(0, box[1] - margin), image.width, min(image.height, box[3] + margin)))


class PagePreviews:
    """PNG pictures of PDF pages under `cache_dir`, rendered once per file version, page and dpi."""

    STYLE = "cropped"  # part of the file name: pictures drawn another way are not reused

    def __init__(self, cache_dir: Path, dpi: int = 80):
        self.cache_dir = cache_dir
        self.dpi = dpi

    def page(self, pdf: Path, page: int) -> Path | None:
        """The picture of 1-based `page`, or None if the file is not a readable PDF or has no such page."""
        if pdf.suffix.lower() != ".pdf":
            return None
        try:
            info = pdf.stat()
        except OSError:
            return None
        version = hashlib.sha256(f"{pdf.resolve()}\0{info.st_size}\0{info.st_mtime_ns}".encode()).hexdigest()[:20]
        target = self.cache_dir / f"{version}-p{page}-{self.dpi}dpi-{self.STYLE}.png"
        if target.is_file():
            return target
        return self._render(pdf, page, target)

    def _render(self, pdf: Path, page: int, target: Path) -> Path | None:
        try:
            with open_pdf(pdf) as document:
                if not 1 <= page <= len(document):
                    return None
                image = document[page - 1].render(scale=self.dpi / 72).to_pil()
        except ReadError as exc:
            log.warning("%s: no preview (%s)", pdf, exc)
            return None
        image = _without_blank_bands(image)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        image.save(partial, format="PNG")
        os.replace(partial, target)  # readers never see a half-written picture
        return target

