"""Answer quality: does the answer contain an accepted answer, does it abstain when it should,
and do its citations point at a passage that holds the answer.

Accuracy comes three ways so that figures compare with published ones: `accuracy` (strict: the
accepted string, case and spacing aside, inside the answer), `accuracy_normalised` (SQuAD's
normalisation: lower case, no punctuation or articles, plus number words as digits, so "eight"
matches "8") and `f1` (SQuAD's token F1 against the best accepted answer, markers removed)."""

from __future__ import annotations

import re
import statistics
import string
import unicodedata
from collections import Counter
from collections.abc import Callable

import numpy as np

from docstack.console import DocstackError
from docstack.eval.datasets import Question
from docstack.rag.answer import Answer, Citation
from docstack.text import without_markers


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())} | {w: str(10 * n) for n, w in enumerate(
    "thirty forty fifty sixty seventy eighty ninety".split(), start=3)}


def squad_tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation (lower case, punctuation and articles removed), as tokens,
    with number words as digits and [n] markers dropped."""
    text = without_markers(text).casefold()
    # SQuAD drops string.punctuation, which holds symbols Unicode does not call punctuation: the
    # backticks of `defaultdict` (code answers) made it a token of its own, and no match.
    text = "".join(" " if c in string.punctuation or unicodedata.category(c).startswith("P") else c for c in text)
    return [_NUMBER_WORDS.get(t, t) for t in text.split() if t not in ("a", "an", "the")]


def is_correct_normalised(answer: str, accepted: list[str]) -> bool:
    said = " " + " ".join(squad_tokens(answer)) + " "
    return any(" " + " ".join(squad_tokens(a)) + " " in said for a in accepted if squad_tokens(a))


def f1(answer: str, accepted: list[str]) -> float:
    said = squad_tokens(answer)
    best = 0.0
    for gold in (squad_tokens(a) for a in accepted):
        common = sum((Counter(said) & Counter(gold)).values())
        if common:
            precision, recall = common / len(said), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def citation_figures(answered: list[tuple[Question, object]]) -> dict:
    """Over answerable questions answered (not abstained): the share with at least one citation
    whose passage holds an accepted answer, and the share of all their citations that do."""
    def holds(citation, question: Question) -> bool:
        return is_correct_normalised(citation.text, question.answers)

    covered = sum(any(holds(c, q) for c in a.citations) for q, a in answered)
    citations = [(c, q) for q, a in answered for c in a.citations]
    return {
        "citation_coverage": round(covered / max(1, len(answered)), 4),
        "citation_precision": round(sum(holds(c, q) for c, q in citations) / max(1, len(citations)), 4),
        "uncited_answers": round(sum(not a.citations for _, a in answered) / max(1, len(answered)), 4),
        "answers_with_unsupported_sentences": round(
            sum(bool(getattr(a, "unsupported", [])) for _, a in answered) / max(1, len(answered)), 4),
    }


def is_correct(answer: str, accepted: list[str]) -> bool:
    said = normalise(answer)
    return any(normalise(a) in said for a in accepted if a.strip())


def evaluate(ask: Callable[[str], object], questions: list[Question],
             on_progress: Callable[[int, int], None] | None = None, details: bool = False) -> dict:
    """`ask(question)` returns a docstack Answer. Returns accuracy, abstention, citation and latency
    figures; with `details`, also each question's answer and how it was scored (`per_question`)."""
    rows = []
    for n, question in enumerate(questions, start=1):
        try:
            rows.append((question, ask(question.text), None))
        except DocstackError as exc:
            rows.append((question, None, str(exc)))
        if on_progress:
            on_progress(n, len(questions))
    result = figures(rows)
    if details:
        result["per_question"] = [scored(q, a, error) for q, a, error in rows]
    return result


def figures(rows: list[tuple[Question, object, str | None]]) -> dict:
    """The figures over (question, answer or None, error or None) rows."""
    done = [(q, a) for q, a, error in rows if not error]
    answerable = [(q, a) for q, a in done if q.answerable]
    unanswerable = [(q, a) for q, a in done if not q.answerable]
    abstained = [(q, a) for q, a in done if a.abstained]
    answered = [(q, a) for q, a in answerable if not a.abstained]
    true_abstentions = [(q, a) for q, a in unanswerable if a.abstained]
    seconds = [a.seconds for _, a in done]
    share = lambda part, whole: round(len(part) / max(1, len(whole)), 4)  # noqa: E731
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "accuracy": share([1 for q, a in answered if is_correct(a.answer, q.answers)], answerable),
        "accuracy_normalised": share([1 for q, a in answered if is_correct_normalised(a.answer, q.answers)], answerable),
        "f1": round(sum(f1(a.answer, q.answers) for q, a in answered) / max(1, len(answerable)), 4),
        "abstention_precision": share(true_abstentions, abstained),
        "abstention_recall": share(true_abstentions, unanswerable),
        "false_abstentions": share([1 for _, a in answerable if a.abstained], answerable),
        **citation_figures(answered),
        "median_seconds": round(statistics.median(seconds or [0.0]), 3),
        "p95_seconds": round(float(np.percentile(seconds, 95)), 3) if seconds else 0.0,
        "errors": [{"question": q.id, "error": error} for q, _, error in rows if error][:10],
    }


def rescored(per_question: list[dict]) -> dict:
    """`figures` again from saved `per_question` rows (`eval answers --details`): after a change to
    the scoring, the answers already given are judged again without asking a model."""
    rows = []
    for row in per_question:
        question = Question(row["id"], row["question"], row["accepted"], row["answerable"])
        if row.get("error") or "answer" not in row:
            rows.append((question, None, row.get("error") or "no answer recorded"))
            continue
        citations = [Citation(c["n"], 0, c["source"], c["page"], c["text"]) for c in row["citations"]]
        rows.append((question, Answer(row["answer"], citations, "", row["abstained"], row["seconds"],
                                      unsupported=row["unsupported"]), None))
    return figures(rows)


def scored(question: Question, answer, error: str | None) -> dict:
    """One question's answer as the figures above judged it (for reading failures one by one)."""
    row = {"id": question.id, "question": question.text, "answerable": question.answerable,
           "accepted": question.answers, "error": error}
    if answer is None:
        return row
    return {**row, "answer": answer.answer, "abstained": answer.abstained, "seconds": answer.seconds,
            "correct": is_correct(answer.answer, question.answers),
            "correct_normalised": is_correct_normalised(answer.answer, question.answers),
            "f1": round(f1(answer.answer, question.answers), 4),
            "citations": [{"n": c.n, "source": c.source, "page": c.page, "text": c.text,
                           "holds_answer": is_correct_normalised(c.text, question.answers)} for c in answer.citations],
            "unsupported": list(getattr(answer, "unsupported", [])),
            "passages": [h.text for h in getattr(answer, "context", [])]}

