"""Output checks that depend on the ask: links and images to hosts the documents do not mention,
the canary tokens of flagged chunks, and the system prompt leaking into the answer."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlparse

from docstack.safety.base import Finding, Verdict
from docstack.safety.context import URL

MD_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)[^)]*\)")
MD_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(\s*([^)\s]+)[^)]*\)")
_WORDS = re.compile(r"[a-z0-9']+")
LEAK_NGRAM = 8  # this many consecutive words of the system prompt in an answer are a leak


def host(url: str) -> str:
    return (urlparse(url).hostname or "").lower().removeprefix("www.")


class LinkShield:
    """Markdown images are always removed (rendering one sends a request out); links and bare URLs
    are removed unless their host appears in the documents the answer was built from."""

    name = "links"
    stages = ("output",)

    def __init__(self, allowed_hosts: Iterable[str] = ()):
        self.allowed = {h.lower().removeprefix("www.") for h in allowed_hosts}

    @classmethod
    def for_texts(cls, texts: Iterable[str]) -> LinkShield:
        return cls(host(u) for t in texts for u in URL.findall(t))

    def run(self, text: str, stage: str) -> Verdict:
        found = [Finding("link", 1.0, m.start(), m.end(), "[image removed]") for m in MD_IMAGE.finditer(text)]
        for m in MD_LINK.finditer(text):
            if host(m.group(2)) not in self.allowed and not _covered(m.start(), found):
                found.append(Finding("link", 0.9, m.start(), m.end(), "[link removed]"))
        for m in URL.finditer(text):
            if host(m.group()) not in self.allowed and not _covered(m.start(), found):
                found.append(Finding("link", 0.9, m.start(), m.end(), "[link removed]"))
        return Verdict.of(self.name, stage, text, found)


class CanaryShield:
    """Known strings that must not appear in an answer, in whatever sentence the model puts them:
    the tokens and links of flagged chunks (if one shows up, the planted text got through), or the
    secrets found in the passages ("the password is X" has no `password =` for a pattern to see)."""

    stages = ("output",)

    def __init__(self, tokens: Iterable[str] = (), category: str = "canary", label: str = "[removed]",
                 name: str = "canary"):
        self.name, self.category, self.label = name, category, label
        self.tokens = sorted({t for t in tokens if len(t) >= 6}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, self.tokens))) if self.tokens else None

    def run(self, text: str, stage: str) -> Verdict:
        found = [] if self._pattern is None else [
            Finding(self.category, 1.0, m.start(), m.end(), self.label) for m in self._pattern.finditer(text)]
        return Verdict.of(self.name, stage, text, found)


class PromptLeakShield:
    """The system prompt's own wording in the answer (any run of LEAK_NGRAM words)."""

    name = "prompt-leak"
    stages = ("output",)

    def __init__(self, system_prompt: str, allowed: Iterable[str] = ()):
        allowed_grams = {g for a in allowed for g in _ngrams(a)}
        self.grams = _ngrams(system_prompt) - allowed_grams

    def run(self, text: str, stage: str) -> Verdict:
        leaked = bool(self.grams & _ngrams(text))
        return Verdict.of(self.name, stage, text, [Finding("system_prompt_leak", 1.0)] if leaked else [])


def _ngrams(text: str) -> set[tuple[str, ...]]:
    words = _WORDS.findall(text.lower())
    return {tuple(words[i:i + LEAK_NGRAM]) for i in range(len(words) - LEAK_NGRAM + 1)}


def _covered(start: int, found: list[Finding]) -> bool:
    return any(f.start is not None and f.start <= start < f.end for f in found)
