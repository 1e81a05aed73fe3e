from __future__ import annotations

import re

import pytest

from docstack.ingest.chunker import Chunker
from docstack.ingest.readers import Record


def words(texts):
    return [len(t.split()) for t in texts]


def test_small_record_is_one_chunk_with_offsets():
    record = Record("First paragraph here.\n\nSecond one.", page=3, section="Intro")
    [chunk] = Chunker(words, chunk_tokens=50, overlap=5).run([record])
    assert chunk.text == record.text
    assert (chunk.start, chunk.end, chunk.page, chunk.section) == (0, len(record.text), 3, "Intro")


def test_chunks_respect_size_and_never_cut_words():
    text = "\n\n".join(" ".join(f"w{p}x{i}" for i in range(30)) + "." for p in range(10))
    chunks = Chunker(words, chunk_tokens=45, overlap=0).run([Record(text)])
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk.text.split()) <= 45
        assert text[chunk.start:chunk.end] == chunk.text
        assert re.fullmatch(r"\S.*\S", chunk.text, re.S)
        assert (chunk.start == 0 or text[chunk.start - 1].isspace()) and (
            chunk.end == len(text) or text[chunk.end].isspace())
    covered = " ".join(c.text for c in chunks).split()
    assert set(covered) == set(text.split())


def test_long_sentence_is_split_by_words():
    text = " ".join(f"token{i}" for i in range(250))  # one sentence, no punctuation
    chunks = Chunker(words, chunk_tokens=100, overlap=0).run([Record(text)])
    assert [len(c.text.split()) for c in chunks] == [100, 100, 50]


def test_overlap_repeats_trailing_sentences():
    sentences = [f"Sentence number {i} is here." for i in range(40)]
    text = " ".join(sentences)
    chunks = Chunker(words, chunk_tokens=50, overlap=12).run([Record(text)])
    assert len(chunks) > 2
    for left, right in zip(chunks, chunks[1:]):
        assert right.start < left.end, "neighbouring chunks should share the overlap"
        assert left.end - right.start < len(left.text)


def test_real_tokenizer_limit_holds(embedder):
    text = ("Llama Stack serves models through one API. " * 300).strip()
    chunker = Chunker(embedder.count_tokens, chunk_tokens=200, overlap=40)
    chunks = chunker.run([Record(text)])
    assert chunks
    assert max(embedder.count_tokens([c.text for c in chunks])) <= 200
    assert max(embedder.count_tokens([c.text for c in chunks])) + 2 <= embedder.max_tokens


def test_invalid_overlap_is_refused():
    with pytest.raises(ValueError):
        Chunker(words, chunk_tokens=10, overlap=10)
