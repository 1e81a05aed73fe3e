"""Does the answer say something the passages hold? A check on the model's reply, before it is
cited: an answer whose new words (those the question did not already have) are not in the
passages came from the model's memory or nowhere, and is treated as "not found".

Measured on the embedded 0.5B model's answers (docs/evaluation.md): it rarely declines on its
own. Asked what the passages do not say, it either restates the question as an answer ("The
collections class is a thread-safe priority queue [1]") or answers from memory ("The GIL stands
for Global Interpreter Lock"). The first adds no word of its own; the second's words are in no
passage. Both are caught here, by words alone: no model call, microseconds a question.

Words are identifiers as well as prose ("store_true", "TimeoutExpired", "1024"), compared whole
and in lower case; code blocks in the answer are examples, not claims, and are left out. Words
can only judge an answer in the passages' language with spaces between words: an answer in
Chinese or Japanese, or a sentence with no English function word in it (a French answer to
English documents would share no words with them), is not judged."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from docstack.index.keywords import STOPWORDS
from docstack.text import without_markers

# An answer is grounded when at least this share of its new words occur in the passages. The
# share separates sharply (most answers are at 0 or 1); tuned on one split, see docs/evaluation.md.
GROUNDED_MIN = 0.5

_TERM = re.compile(r"(?:[^\W\d]|_)\w{2,}|\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_]+")
# Scripts written without spaces between words: Han, kana, Hangul, Thai.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
# Stopwords, except that in answers and passages the question words are words like any other:
# "Which shutil function finds an executable?" answered "shutil.which" says something new.
_ANSWER_STOPWORDS = STOPWORDS - {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}


@dataclass(frozen=True)
class Grounding:
    new_terms: frozenset[str]  # the answer's words the question did not have
    found: frozenset[str]  # those of them that occur in the passages
    judged: bool = True  # False: words cannot judge this answer (see the module), so it stands

    @property
    def echo(self) -> bool:
        """The answer only restates the question."""
        return not self.new_terms

    @property
    def share(self) -> float:
        return len(self.found) / len(self.new_terms) if self.new_terms else 0.0

    @property
    def grounded(self) -> bool:
        return not self.judged or (not self.echo and self.share >= GROUNDED_MIN)


def terms(text: str, stopwords: frozenset[str] | set[str] = STOPWORDS) -> set[str]:
    return {t.lower().strip("_") for t in _TERM.findall(without_markers(text)) if t.lower() not in stopwords}


def ground(question: str, answer: str, passages: Sequence[str]) -> Grounding:
    claims = answer.split("```")[0]  # what comes before the first code block
    new = terms(claims, _ANSWER_STOPWORDS) - terms(question)
    held = set().union(*(terms(p, _ANSWER_STOPWORDS) for p in passages)) if passages else set()
    return Grounding(frozenset(new), frozenset(new & held), judged=_judgeable(claims))


def _judgeable(text: str) -> bool:
    """Words can judge it: spaced script, and a short answer or one in English (at least one word
    in five a function word: "The GIL stands for Global Interpreter Lock" has two of seven)."""
    if _UNSPACED.search(text):
        return False
    words = _WORD.findall(without_markers(text).lower())
    return len(words) <= 5 or sum(w in STOPWORDS for w in words) >= len(words) / 5
