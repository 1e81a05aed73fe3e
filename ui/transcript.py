"""A chat as the web app keeps it: the turns, their evidence, and the Markdown export."""

from __future__ import annotations

from dataclasses import dataclass, field

from docstack import Answer, Evidence, SafetyReport, Turn, refusal


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


def blocked(answer: Answer | None) -> SafetyReport | None:
    """The safety report of a blocked answer (its stage and category), or None."""
    return answer.safety if answer is not None and answer.safety.blocked else None


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
            lines += [f"**{refusal(verdict.stage, verdict.category)}**", ""]
        elif answer.abstained:
            lines += ["**Not answered from the documents.**", ""]
        lines += [answer.answer, "", f"*{timing(answer)}*", ""]
        for card in turn.evidence:
            lines += [f"[{card.n}] {card.where} — `{card.source}`", ""]
            passage = (card.before + card.match + card.after).strip()
            lines += ["> " + line for line in passage.splitlines() if line.strip()]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
