"""Answer quality: does the answer contain an accepted answer, and does it abstain when it should."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable

from docstack.console import DocstackError
from docstack.eval.datasets import Question


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def is_correct(answer: str, accepted: list[str]) -> bool:
    said = normalise(answer)
    return any(normalise(a) in said for a in accepted if a.strip())


def evaluate(ask: Callable[[str], object], questions: list[Question],
             on_progress: Callable[[int, int], None] | None = None) -> dict:
    """`ask(question)` returns a docstack Answer. Returns accuracy, abstention and latency figures."""
    rows = []
    for n, question in enumerate(questions, start=1):
        try:
            answer = ask(question.text)
            rows.append((question, answer.answer, answer.abstained, answer.seconds, None))
        except DocstackError as exc:
            rows.append((question, "", False, 0.0, str(exc)))
        if on_progress:
            on_progress(n, len(questions))
    failed = [r for r in rows if r[4]]
    answerable = [r for r in rows if r[0].answerable and not r[4]]
    unanswerable = [r for r in rows if not r[0].answerable and not r[4]]
    abstained = [r for r in rows if r[2]]
    correct = [r for r in answerable if not r[2] and is_correct(r[1], r[0].answers)]
    true_abstentions = [r for r in unanswerable if r[2]]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "accuracy": round(len(correct) / max(1, len(answerable)), 4),
        "abstention_precision": round(len(true_abstentions) / max(1, len(abstained)), 4),
        "abstention_recall": round(len(true_abstentions) / max(1, len(unanswerable)), 4),
        "false_abstentions": round(sum(r[2] for r in answerable) / max(1, len(answerable)), 4),
        "median_seconds": round(statistics.median([r[3] for r in rows if not r[4]] or [0.0]), 3),
        "errors": [{"question": r[0].id, "error": r[4]} for r in failed][:10],
    }
