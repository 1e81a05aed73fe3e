"""Follow-up questions: one model call through the stack turns "and who services it?" into a
question that stands on its own, so retrieval sees what the user means."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from docstack.text import without_markers

# Only the last turns matter for what "it" refers to, and each costs prompt time on a small model.
HISTORY_TURNS = 3
ANSWER_CHARS = 300
REWRITE_TOKENS = 64

REWRITE_PROMPT = """Rewrite the user's follow-up question so that it can be understood without the conversation.
Replace words like "it", "they", "that" or "there" with what they refer to in the conversation.
Keep the question short. Do not answer it. Reply with the rewritten question only."""

_LABEL = re.compile(r"^\s*(standalone|rewritten)?\s*(question)?\s*:\s*", re.I)


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str


Chat = Callable[[list[dict], int], Iterator[str]]  # messages, max tokens -> text deltas


class QuestionRewriter:
    def __init__(self, chat: Chat):
        self.chat = chat

    def run(self, question: str, history: Sequence[Turn]) -> str:
        """The question unchanged when there is no history; otherwise its standalone form."""
        recent = list(history)[-HISTORY_TURNS:]
        if not recent:
            return question
        lines = []
        for turn in recent:
            answer = without_markers(turn.answer).strip()
            lines += [f"User: {turn.question.strip()}", f"Assistant: {answer[:ANSWER_CHARS]}"]
        conversation = "\n".join(lines)
        messages = [
            {"role": "system", "content": REWRITE_PROMPT},
            {"role": "user", "content": f"Conversation:\n{conversation}\n\nFollow-up question: {question.strip()}"
                                        "\n\nRewritten question:"},
        ]
        return standalone(question, "".join(self.chat(messages, REWRITE_TOKENS)))


def standalone(question: str, reply: str) -> str:
    """The first line of the model's reply without labels or quotes; the question itself if the
    reply is empty or reads like an answer rather than a question."""
    line = next((part for part in reply.strip().splitlines() if part.strip()), "")
    line = _LABEL.sub("", line).strip().strip('"“”\'').strip()
    if not line or len(line) > 3 * len(question) + 120:
        return question
    return line
