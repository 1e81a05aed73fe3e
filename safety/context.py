"""Checks for retrieved text: instructions planted in a document (indirect prompt injection),
exfiltration links, hidden text. Run once per chunk at ingest time; the verdict is stored with the
chunk (see `ChunkVerdict`) and re-computed at query time only when the rules changed.

A flagged chunk's canary-like tokens and links are kept with its verdict, so the output shield can
remove them from an answer even when the chunk itself was dropped."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from docstack.safety.base import Finding, Verdict
from docstack.safety.injection import RuleShield
from docstack.text import sentence_spans

# Text addressed to the model that reads the document, not to the human reader.
_MACHINE = (r"(?:chat ?bots?|bots?|chat assistants?|ai assistants?|assistants?|ai models?|(?:large )?language models?|"
            r"llms?|models?|ai|gpts?|copilots?)")
_TELL = (r"(?:respond|reply|answer|output|write|add|insert|include|mention|say|recommend|print|append|forget|ignore|"
         r"disregard|tell|send|visit|end with|begin with|must|should|shall|need to|have to|are required to)")
PLANTED = [
    re.compile(r"\b(?:note|message|instructions?|attention|reminder)s?\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?"
               r"(?:ai|a\.i\.|assistants?|language models?|llms?|models?|chat ?bots?|gpts?|copilots?)\b", re.I),
    # a machine addressed by name: "AI assistant, you must...", "Chat assistants: respond...", "Dear model, ..."
    re.compile(r"(?:^|[.!?\]\n]\s*|\b(?:dear|hey|hello|attention)\s+)(?:the\s+|all\s+|any\s+)?" + _MACHINE +
               r"\s*[,:]\s*(?:\w+\W+){0,6}?" + _TELL + r"\b", re.I),
    re.compile(r"\bif (?:a|an|any|the|you are an?) (?:bot|ai|model|assistant|llm|language model|chatbot)\b.{0,40}?"
               r"\b(?:reads?|reading|process\w*|summari[sz]\w*|sees?)\b", re.I | re.S),
    re.compile(r"\b(?:whoever|anyone who|any automated \w+|(?:ai|model|bot|assistant|llm)s? (?:reading|processing|"
               r"summari[sz]ing))\b.{0,60}?\b(?:should|must|is instructed|are instructed|needs? to)\b|"
               r"\bsummar(?:y|ies) of this (?:page|document|file|text) (?:must|should)\b", re.I | re.S),
    re.compile(r"\b(?:when|if|before|after)\s+(?:you\s+)?(?:answer|summari[sz]|respond|reply|read)\w*\b.{0,80}?"
               r"\b(?:the assistant|you must|you should|always append|always include)\b", re.I | re.S),
    re.compile(r"\b(?:reply|respond|answer)\s+(?:only\s+)?with\s+(?:the\s+)?(?:code|token|word|phrase|string)\b|"
               r"\bthe correct answer is always\b|\bdo not mention this (?:instruction|note|message)\b", re.I),
    # an HTML comment (invisible when rendered) that speaks to a machine or overrides instructions
    re.compile(r"<!--(?:(?!-->).)*?\b(?:assistant|ai|llm|chatbot|model)\b(?:(?!-->).){0,60}?\b(?:must|should|ignore|"
               r"disregard|reply|respond|output|say|print)\b(?:(?!-->).)*-->|<!--(?:(?!-->).)*?\b(?:ignore|disregard)"
               r"\b(?:(?!-->).)*?\b(?:instructions|rules|question)\b(?:(?!-->).)*-->", re.I | re.S),
    re.compile(r"\b(?:tell|inform|warn)\s+the\s+user\b.{0,80}\b(?:log ?in|visit|click|go to|account|locked|verify)", re.I | re.S),
]
# A markdown image whose URL carries data out ("?q=..."), or any image pointing at a query string.
EXFIL_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*https?://[^)\s]*[?#][^)\s]*\)", re.I)
HIDDEN = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|font-size\s*:\s*0|visibility\s*:\s*hidden|color\s*:\s*(?:white|#fff\b)", re.I)
# Codes that a planted instruction asks the model to repeat: CANARY-1F4C-ZQ, PINEAPPLE-4417...
CANARY = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9]{2,}(?:-[A-Z0-9]{2,}){1,4}\b")
URL = re.compile(r"https?://[^\s)\]>\"']+", re.I)
HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)


@dataclass
class ChunkVerdict:
    """What the context shield found in one chunk, as stored with it (JSON in `chunks.safety`)."""

    version: str
    category: str | None = None
    shield: str | None = None
    score: float = 0.0
    canaries: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.category is not None

    def dumps(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, [], 0.0)}, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str | None) -> ChunkVerdict | None:
        if not raw:
            return None
        try:
            return cls(**json.loads(raw))
        except (TypeError, ValueError):
            return None


class ContextShield:
    """Planted instructions (the input rules too), exfiltration images, hidden characters/styles."""

    name = "context"
    stages = ("context",)

    def __init__(self, rules: RuleShield | None = None):
        self.rules = rules or RuleShield(strict=True)

    def run(self, text: str, stage: str = "context") -> Verdict:
        findings: list[Finding] = []
        if EXFIL_IMAGE.search(text):
            findings.append(Finding("exfiltration_link", 1.0, shield="context.links"))
        if HIDDEN.search(text) or HIDDEN_STYLE.search(text):
            findings.append(Finding("hidden_text", 0.9, shield="context.hidden"))
        if any(p.search(text) for p in PLANTED):
            findings.append(Finding("planted_instruction", 0.9, shield="context.planted"))
        else:
            ruled = self.rules.run(HIDDEN.sub("", text), stage)
            if ruled.flagged and ruled.category == "quoted_instruction":
                findings.append(Finding("quoted_instruction", 0.5, shield=ruled.shield))
            elif ruled.flagged and ruled.category in ("injection", "jailbreak", "prompt_extraction"):
                findings.append(Finding("planted_instruction", ruled.score or 0.9, shield=ruled.shield))
        return Verdict.of(self.name, stage, text, findings)

    def strip(self, text: str, verdict: ChunkVerdict) -> str:
        """The chunk without what made it flagged: HTML comments, hidden characters, and every sentence
        that the checks flag or that carries one of its canaries or links. Empty if nothing is left."""
        text = HIDDEN.sub("", HTML_COMMENT.sub(" ", text))
        tokens = [*verdict.canaries, *verdict.links]
        kept, last = [], 0
        for start, end in sentence_spans(text, lines=True):
            piece, sentence, last = text[last:end], text[start:end], end  # the piece keeps the space before it
            if not any(t in sentence for t in tokens) and not self.run(sentence).flagged:
                kept.append(piece)
        return "".join(kept).strip()

    def verdict(self, text: str, version: str) -> ChunkVerdict:
        v = self.run(text)
        if not v.flagged:
            return ChunkVerdict(version)
        return ChunkVerdict(version, v.category, v.shield, v.score or 0.0,
                            canaries=sorted(set(CANARY.findall(text))), links=sorted(set(URL.findall(text))))
