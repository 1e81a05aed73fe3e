"""A chat as the web app keeps it: the turns, their evidence, and the Markdown export."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from docstack.stack.conversation import Turn
from docstack.stack.evidence import Evidence
from docstack.stack.rag import Answer


@dataclass
class ChatTurn:
    question: str
    searched: str  # the standalone question retrieval used (the question itself on a first turn)
    answer: Answer | None = None
    evidence: list[Evidence] = field(default_factory=list)
    error: str | None = None

    @property
    def rewritten(self) -> bool:
        return self.searched.strip() != self.question.strip()


def history(turns: list[ChatTurn]) -> list[Turn]:
    """What a follow-up is read against: the answered turns, as the model saw the questions."""
    return [Turn(t.searched, t.answer.answer) for t in turns if t.answer is not None]


def blocked(answer: Answer | None) -> dict[str, Any] | None:
    """The safety verdict of a blocked answer (stage, category, ...), or None. The safety checks
    may not be part of this build, and may give their verdict as an object or a dict."""
    verdict = getattr(answer, "safety", None)
    if verdict is None:
        return None
    if not isinstance(verdict, dict):
        verdict = {k: getattr(verdict, k, None) for k in ("blocked", "stage", "category", "shield", "reason")}
    return verdict if verdict.get("blocked") else None


def refusal(verdict: dict[str, Any]) -> str:
    where = f"the {verdict['stage']} check" if verdict.get("stage") else "a safety check"
    why = f" (category: {verdict['category']})" if verdict.get("category") else ""
    return f"Refused by the safety policy at {where}{why}."


def timing(answer: Answer) -> str:
    first = "—" if answer.first_token_seconds is None else f"{answer.first_token_seconds:.1f} s"
    waited = f" (waited {answer.wait_seconds:.1f} s for the model)" if answer.wait_seconds >= 0.5 else ""
    return f"{answer.model} · first token {first}{waited} · total {answer.seconds:.1f} s"


def to_markdown(turns: list[ChatTurn], collection: str) -> str:
    lines = [f"# docstack chat — collection `{collection}`", ""]
    for i, turn in enumerate(turns, 1):
        lines += [f"## {i}. {turn.question}", ""]
        if turn.rewritten:
            lines += [f"*Searched as:* {turn.searched}", ""]
        if turn.error:
            lines += [f"**Error:** {turn.error}", ""]
            continue
        answer = turn.answer
        if answer is None:
            continue
        verdict = blocked(answer)
        if verdict:
            lines += [f"**{refusal(verdict)}**", ""]
        elif answer.abstained:
            lines += ["**Not answered from the documents.**", ""]
        lines += [answer.answer, "", f"*{timing(answer)}*", ""]
        for card in turn.evidence:
            lines += [f"[{card.n}] {card.where} — `{card.source}`", ""]
            passage = (card.before + card.match + card.after).strip()
            lines += ["> " + line for line in passage.splitlines() if line.strip()]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
