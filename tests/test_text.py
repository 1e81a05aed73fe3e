"""The one sentence splitter and the [n] marker codec that chunker, citations, evidence,
conversation and shields share."""

from __future__ import annotations

from docstack.text import (cited_numbers, marker_position, sentence_ends, sentence_spans, sentences, with_markers,
                           without_markers)


def test_sentences_end_at_punctuation_before_space_and_at_blank_lines():
    text = 'He said "yes." Then he left!  Really?! It is 3.5 km long.\n\nNew paragraph\nsame sentence'
    assert sentences(text) == ['He said "yes."', "Then he left!", "Really?!", "It is 3.5 km long.",
                               "New paragraph\nsame sentence"]
    assert sentences(text, lines=True)[-2:] == ["New paragraph", "same sentence"]
    assert sentences("   ") == [] and sentences("no end") == ["no end"]


def test_spans_point_into_the_text_and_respect_bounds():
    text = "  One. Two.  Three."
    assert [text[a:b] for a, b in sentence_spans(text)] == ["One.", "Two.", "Three."]
    assert [text[a:b] for a, b in sentence_spans(text, 7, 12)] == ["Two."]


def test_a_streamed_text_does_not_end_where_it_stops():
    assert sentence_ends("The price is 3.") == []  # it may go on: "3.5"
    assert sentence_ends("The price is 3. Next") == [15]
    assert sentence_ends("line one\nline two", lines=True) == [9]


def test_markers_are_read_removed_and_placed():
    answer = "It is blue [1]. It is big [2, 3]. Again [1; 4]."
    assert cited_numbers(answer) == [1, 2, 3, 4]
    assert without_markers(answer) == "It is blue. It is big. Again."
    text = "It is blue. Is it?"
    spans = sentence_spans(text)
    assert [marker_position(text, s) for s in spans] == [10, 17]
    assert with_markers(text, [(10, 1), (17, 2)]) == "It is blue [1]. Is it [2]?"
    assert marker_position("...", (0, 3)) == 0  # never before the sentence's start
    assert marker_position("Note: x", (0, 5)) == 4 and marker_position("TAX", (0, 3)) == 3
