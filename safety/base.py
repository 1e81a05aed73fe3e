"""What every shield shares: the stage it checks, the verdict it gives, and the one method it has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

STAGES: tuple[str, ...] = ("input", "context", "output")


@dataclass(frozen=True)
class Finding:
    """One thing a shield found: its category, a score in [0, 1], and (for redaction) where it is."""

    category: str
    score: float = 1.0
    start: int | None = None
    end: int | None = None
    label: str | None = None  # what a redaction says, e.g. "[email removed]"
    shield: str | None = None


@dataclass(frozen=True)
class Verdict:
    """A decision on one text at one stage.

    A shield returns what it found (`flagged`, `findings`); the guard applies the policy and sets
    `blocked`, `action` and `text` (the text after redactions)."""

    stage: str
    text: str
    blocked: bool = False
    flagged: bool = False
    category: str | None = None
    shield: str | None = None
    score: float | None = None
    redactions: int = 0
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    action: str = "allow"

    def to_json(self) -> dict:
        return {"blocked": self.blocked, "category": self.category, "shield": self.shield,
                "score": None if self.score is None else round(self.score, 3)}

    @classmethod
    def of(cls, shield: str, stage: str, text: str, findings: list[Finding]) -> Verdict:
        """A shield's verdict: flagged with its strongest finding, if it found anything."""
        findings = [f if f.shield else Finding(f.category, f.score, f.start, f.end, f.label, shield) for f in findings]
        if not findings:
            return cls(stage, text, shield=shield)
        top = max(findings, key=lambda f: f.score)
        return cls(stage, text, flagged=True, category=top.category, shield=top.shield, score=top.score,
                   findings=tuple(findings))


class Shield(Protocol):
    """A detector for some stages. It reports what it finds; the policy decides what happens."""

    name: str
    stages: tuple[str, ...]

    def run(self, text: str, stage: str) -> Verdict: ...


@dataclass
class SafetyReport:
    """What an answer says about the shields: `Answer.to_json()["safety"]`."""

    blocked: bool = False
    stage: str | None = None
    category: str | None = None
    shield: str | None = None
    redactions: int = 0
    dropped_chunks: int = 0
    # What the redactions were of (email, phone, ...), for the request audit; not in the answer's JSON.
    redacted: set[str] = field(default_factory=set)

    def to_json(self) -> dict:
        return {"blocked": self.blocked, "stage": self.stage, "category": self.category, "shield": self.shield,
                "redactions": self.redactions, "dropped_chunks": self.dropped_chunks}

    def decision(self) -> str:
        """One word for the audit and traces: blocked, redacted (or passages dropped) or allowed."""
        if self.blocked:
            return "blocked"
        return "redacted" if self.redactions or self.dropped_chunks else "allowed"

    def summary(self) -> dict:
        """The decision for the request audit and traces, with its category: what blocked, or what
        was redacted (comma-separated)."""
        category = self.category if self.blocked else (",".join(sorted(self.redacted)) or None)
        return {"decision": self.decision(), "stage": self.stage, "category": category,
                "redactions": self.redactions, "dropped_chunks": self.dropped_chunks}

    def record(self, verdict: Verdict) -> None:
        """Take in a decided verdict: the first block wins; redactions add up."""
        self.redactions += verdict.redactions
        if verdict.redactions:
            self.redacted.update(f.category for f in verdict.findings if f.start is not None)
        if verdict.blocked and not self.blocked:
            self.blocked, self.stage, self.category, self.shield = True, verdict.stage, verdict.category, verdict.shield

    def merge(self, other: SafetyReport) -> None:
        """Take in another stage's report (the output filter's): redactions add up, a block is kept."""
        self.redactions += other.redactions
        self.redacted |= other.redacted
        self.dropped_chunks += other.dropped_chunks
        if other.blocked and not self.blocked:
            self.blocked, self.stage, self.category, self.shield = True, other.stage, other.category, other.shield
