"""What an answer is: its text, the citations behind it, and what happened on the way (the model
that wrote it, the router's notices, the safety shields' report, the time spent)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from docstack.rag.retrieve import Hit
from docstack.safety.base import SafetyReport


@dataclass(frozen=True)
class Citation:
    n: int
    chunk_id: int
    source: str
    page: int | None
    text: str
    page_label: str | None = None  # the page's printed label, where the PDF defines labels

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    answer: str
    citations: list[Citation]
    model: str
    abstained: bool
    seconds: float
    first_token_seconds: float | None = None
    prompt_tokens: int = 0
    context: list[Hit] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # the router's: fallbacks, passages left out
    safety: SafetyReport = field(default_factory=SafetyReport)
    wait_seconds: float = 0.0  # waiting for a turn at a busy model server (part of `seconds`)
    unsupported: list[str] = field(default_factory=list)  # answer sentences no passage backs (kept, listed)

    def to_json(self) -> dict:
        return {
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
            "model": self.model,
            "abstained": self.abstained,
            "seconds": self.seconds,
            "first_token_seconds": self.first_token_seconds,
            "notices": self.notices,
            "safety": self.safety.to_json(),
            "wait_seconds": self.wait_seconds,
            "unsupported": self.unsupported,
        }


# (the answer, or None and why not) -> None
Observer = Callable[[Answer | None, BaseException | None], None]


class AnswerStream:
    """Iterate for the answer's text as the model writes it; `.answer` is set once it ends."""

    def __init__(self, deltas: Iterator[str], finish: Callable[[str, float | None], Answer]):
        self._deltas = deltas
        self._finish = finish
        self._observers: list[Observer] = []
        self.answer: Answer | None = None

    def observe(self, observer: Observer) -> AnswerStream:
        """Call `observer(answer, None)` once the answer is done, or `observer(None, error)` when the
        stream fails or its reader stops early (GeneratorExit): tracing and the audit see each end."""
        self._observers.append(observer)
        return self

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        try:
            for delta in self._deltas:
                if first is None and delta.strip():
                    first = time.perf_counter() - started
                parts.append(delta)
                yield delta
            self.answer = self._finish("".join(parts), first)
        except BaseException as exc:
            self._notify(None, exc)
            raise
        self._notify(self.answer, None)

    def _notify(self, answer: Answer | None, error: BaseException | None) -> None:
        observers, self._observers = self._observers, []  # each hears one end
        for observer in observers:
            observer(answer, error)

    def result(self) -> Answer:
        for _ in self:
            pass
        assert self.answer is not None
        return self.answer
