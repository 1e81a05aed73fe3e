"""Prompt-injection and jailbreak detection: rules for the well-known shapes, applied to the text
and to its decoded variants (base64, hex, ROT13, leetspeak, spaced or reversed letters), plus the
`prompt-guardrail` TF-IDF model as one more signal.

Categories: `injection` (instruction overrides, fake role tags, encoded payloads), `jailbreak`
(DAN, developer mode, "no restrictions", role play without rules), `prompt_extraction`
(requests for the system prompt), `exfiltration` (requests to dump credentials or personal data)."""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import re
import unicodedata
import warnings
from functools import cached_property

from docstack.safety.base import Finding, Verdict
from docstack.text import sentences

log = logging.getLogger(__name__)

_I = re.I | re.S
_W = r"(?:\W+\w+){0,6}?\W+"  # up to six words in between

# What an override overrides: instructions, rules... often qualified (previous, above, system...).
_TARGET = (r"(?:(?:all|any|the|your|my|its|these|those|of)\s+)*(?:(?:previous|prior|above|earlier|preceding|former|"
           r"original|initial|system|existing|safety|ethical|current|old)\s+)*"
           r"(?:instructions?|directions?|directives?|rules|guidelines|constraints|restrictions|prompts?|"
           r"system (?:message|prompt)|programming|training|everything(?: (?:above|before|you were told))?|"
           r"(?:the )?(?:documents?|excerpts|context))\b")

# In documents, "skip prompts" or "forget documents" are ordinary prose; an override there must name instructions.
STRICT_OVERRIDE = re.compile(r"\b(?:ignore|ignoring|disregard|forget)\b(?:\W+\w+){0,3}?\W+(?:(?:all|any|the|your|its|of)\s+)*"
                             r"(?:previous|prior|above|earlier|preceding|original|initial|system|safety)\s+"
                             r"(?:instructions?|directions?|directives?|rules|guidelines|prompts?)\b", _I)
LOOSE_OVERRIDE = re.compile(rf"\b(?:ignore|ignoring|disregard|forget|skip|cancel|drop|bypass|override|overrule|"
                            rf"neglect|abandon)\b(?:\W+\w+){{0,3}}?\W+{_TARGET}", _I)

RULES: list[tuple[str, re.Pattern, float]] = [
    # instruction overrides
    ("injection", LOOSE_OVERRIDE, 0.95),
    ("injection", re.compile(r"\b(?:do not|don't|never|stop)\s+(?:follow|obey|listen to|use)\w*\s+(?:your|the|any|its)\s+"
                             r"(?:instructions|rules|guidelines|documents|excerpts|operators|developers)", _I), 0.9),
    ("injection", re.compile(r"\bnever\s+(?:follows?|obeys?)\s+(?:the|your|any)\s+(?:instructions|rules)", _I), 0.9),
    ("injection", re.compile(r"\b(?:new|real|updated|actual)\s+(?:task|instructions?|rules|directives?|orders)"
                             r"(?:\s+(?:are|is))?\s*[:\-]|\boverriding everything\b", _I), 0.9),
    ("injection", re.compile(r"\b(?:previous|prior|earlier|above|old)\s+(?:instructions|guidelines|rules|directives)\s+"
                             r"(?:were|are|is)\s+(?:a test|void|deprecated|cancel+ed|obsolete|no longer|invalid)", _I), 0.9),
    ("injection", re.compile(r"\b(?:pretend|act as if|imagine)\b.{0,40}\b(?:system (?:message|prompt)|instructions|rules)"
                             r"\b.{0,30}\b(?:does not|doesn't|don't|do not|never) (?:exist|apply)", _I), 0.9),
    ("injection", re.compile(r"\b(?:rules|restrictions|guidelines)\b.{0,20}\b(?:no longer|don't|do not) apply", _I), 0.85),
    ("injection", re.compile(r"</?\s*(?:system|excerpts?|instructions?|im_start|im_end)\s*>|<\|im_(?:start|end)\|>|"
                             r"###\s*(?:instruction|system)\b|\[\s*(?:system|INST)\s*\]|(?:^|\n|\. )\s*SYSTEM\s*:", re.S), 0.9),
    ("injection", re.compile(r"\b(?:decode|decrypt|apply rot-?13|rot-?13|unscramble|reverse)\b.{0,60}\b(?:and|then)\b.{0,30}"
                             r"\b(?:follow|obey|do what|execute|run|comply)", _I), 0.85),
    # jailbreaks
    ("jailbreak", re.compile(r"\bdo anything now\b|\b(?:you are|act as|pretend to be|be|as an?|become|called)\s+(?:an?\s+)?"
                             r"(?:DAN|STAN|AIM|DUDE|UnfilteredGPT|Unbound)\b", re.S), 0.95),
    ("jailbreak", re.compile(r"\b(?:jailbreak|jailbroken|god|sudo|unrestricted|unfiltered|uncensored|dan|evil)\s+mode\b|"
                             r"\bjailbreak\s*:", _I), 0.95),
    ("jailbreak", re.compile(r"\bdeveloper mode\b.{0,120}\b(?:any content|without (?:any )?filters?|no filters?|"
                             r"two responses|uncensored|no restrictions|unrestricted)|\byou are (?:now )?in developer mode", _I), 0.9),
    ("jailbreak", re.compile(r"\b(?:without|no|free of|freed from|free from|broken free of)\s+(?:any\s+)?(?:ethical\s+|moral\s+|"
                             r"legal\s+|content\s+|safety\s+)*(?:restrictions|limits|limitations|filters|rules|guidelines|"
                             r"censorship|refusals|constraints|policy|policies|considerations|confines|safeguards)\b", _I), 0.8),
    ("jailbreak", re.compile(r"\b(?:uncensored|unfiltered|unrestricted|unchained|unbound)\b.{0,40}\b(?:ai|assistant|mode|"
                             r"chatbot|model|simulation|version)|\bno rules apply\b|\bnever refuses?\b|"
                             r"\bsafeguards (?:are )?disabled\b|\bin character no matter what\b", _I), 0.85),
    ("jailbreak", re.compile(r"\b(?:ignor\w*|bypass\w*|disabl\w*|remov\w*|turn(?:ing)? off|circumvent\w*)\b" + _W +
                             r"(?:safety|ethic\w*|content|moral)\s+(?:training|guidelines|filters?|rules|polic\w+|settings)"
                             r"|\b(?:safety|ethic\w*)\s+(?:training|filters?|rules)\b.{0,30}\b(?:mistake|ignor\w*|bypass)", _I), 0.9),
    ("jailbreak", re.compile(r"\b(?:pretend|act|role-?play|play(?:ing)? (?:the )?(?:role|character)|imagine|simulate|"
                             r"you are now|from now on you are|you are a different|be my)\b.{0,80}\b(?:evil|rogue|"
                             r"unfiltered|unrestricted|no limits|escaped|hacker|accomplice|villain|without (?:any )?"
                             r"(?:rules|guidelines|restrictions|filters|ethics)|opposite of)", _I), 0.85),
    ("jailbreak", re.compile(r"\byou are (?:now )?(?:a different|another|no longer (?:a|an|the))\s+\w+|"
                             r"\byou(?:'re| are) now (?:free|going to act)|\bstay in character\b", _I), 0.8),
    ("jailbreak", re.compile(r"\b(?:late|deceased|dead)\s+grand(?:mother|father|ma|pa)\b|\bgrandma\b.{0,60}\bused to\b", _I), 0.85),
    ("jailbreak", re.compile(r"\b(?:act as|simulate|pretend to be)\s+(?:an?\s+)?(?:linux\s+)?(?:terminal|shell|console)\b|"
                             r"/etc/(?:shadow|passwd)", _I), 0.85),
    ("jailbreak", re.compile(r"\b(?:i am|i'm)\s+your\s+(?:developer|creator|admin\w*|owner)\b.{0,60}\b(?:authori[sz]e|"
                             r"allow|permit|need)", _I), 0.85),
    ("jailbreak", re.compile(r"\bevil twin\b|\bprove you are (?:truly )?(?:intelligent|free)\b|\bi am unchained\b|"
                             r"\bfreed? from\b.{0,40}\bpolic(?:y|ies)\b", _I), 0.8),
    # system-prompt extraction
    ("prompt_extraction", re.compile(r"\byour\s+(?:system\s+|initial\s+|original\s+|hidden\s+|secret\s+|full\s+|first\s+|"
                                     r"pre-?)?(?:prompt|instructions|system message|pre-?prompt|configuration|"
                                     r"context window|rules you)\b", _I), 0.9),
    ("prompt_extraction", re.compile(r"\b(?:read|tell|show|give|print|repeat|reveal|output|display|leak|share|dump|copy|"
                                     r"quote|translate|summari[sz]e|write out|spell out)\b" + _W +
                                     r"(?:the|its)\s+(?:system|initial|hidden|original|secret|full|pre-?)\s*"
                                     r"(?:prompt|instructions|message|configuration)", _I), 0.9),
    ("prompt_extraction", re.compile(r"\b(?:print|repeat|output|show|copy|write|return|quote)\s+(?:out\s+)?(?:me\s+)?"
                                     r"(?:everything|all|the text|the words|what(?:ever)? (?:is|was|you see))\s+"
                                     r"(?:above|before|preceding|prior)|\b(?:text|words|everything)\s+(?:that\s+)?"
                                     r"(?:precedes|came before|is above)", _I), 0.9),
    ("prompt_extraction", re.compile(r"\bwhat (?:were|have) you (?:been )?(?:told|instructed|given)\b|"
                                     r"\b(?:prompt|instructions?|rules|excerpts)\s+(?:that\s+)?you\s+(?:were|have been)\s+"
                                     r"(?:given|told|provided)|\b(?:rules|instructions|guidelines)\s+(?:that\s+)?you\s+"
                                     r"(?:must|have to|are supposed to|were told to)\s+follow", _I), 0.9),
    # requests to dump secrets or personal data: flagged, the output shield does the redaction
    ("exfiltration", re.compile(r"\b(?:all|every|list|dump|reveal|read(?:s)? out|print|extract)\b.{0,40}\b(?:passwords?|"
                                r"credentials|api keys?|secrets|tokens|social security|ssns?|credit cards?|card numbers?|"
                                r"personal (?:details|data|information)|email addresses|phone numbers|product keys)", _I), 0.7),
]

# "ignore previous instructions", "forget your rules", "system prompt", "no restrictions" in other languages
MULTILINGUAL = re.compile("|".join([
    r"\bignor\w*\b.{0,40}\b(?:instructions|consignes|règles|instrucciones|reglas|istruzioni|regole|instruções|regras)\b",
    r"\boubli\w*\b.{0,30}\b(?:instructions|règles|consignes)\b", r"\bprompt (?:système|systeme)\b",
    r"\bsans (?:aucune |aucun )?(?:restrictions?|filtres?|limites?)\b",
    r"\bignorier\w*\b.{0,40}\b(?:anweisungen|instruktionen|regeln|vorgaben)\b", r"\bvergiss\w*\b.{0,30}\b(?:anweisungen|regeln)\b",
    r"\bsystem-?prompt\b", r"\buneingeschränkt\w*\b|\bohne (?:einschränkungen|filter|regeln)\b",
    r"\bolvid\w*\b.{0,30}\b(?:instrucciones|reglas)\b", r"\bprompt del sistema\b", r"\bsin (?:ninguna )?(?:restricci\w+|filtros?)\b",
    r"\bdimentic\w*\b.{0,30}\b(?:istruzioni|regole)\b", r"\bprompt di sistema\b", r"\bsenza (?:filtri|restrizioni|limiti)\b",
    r"\besque[cç]\w*\b.{0,30}\b(?:instruções|regras)\b", r"\bprompt (?:de|do) sistema\b", r"\bsem (?:restrições|filtros)\b",
    r"忽略.{0,12}(?:指令|指示|说明|规则|提示)", r"忘记.{0,8}(?:规则|指令|指示)", r"系统提示", r"没有任何限制|不受任何限制",
    r"игнорир\w*.{0,40}(?:инструкци\w*|правил\w*|указани\w*)", r"забудь\w*.{0,30}(?:правил\w*|инструкци\w*)",
    r"системн\w+ (?:промпт|подсказк\w*)", r"без (?:каких-либо )?ограничени\w*",
    r"指示.{0,8}無視|無視.{0,8}指示", r"システムプロンプト", r"\bnegeer\b.{0,40}\b(?:instructies|regels)\b", r"\bsysteemprompt\b",
    r"\bzignoruj\b.{0,40}\b(?:instrukcje|polecenia)\b", r"\bprompt systemowy\b", r"무시", r"시스템 프롬프트",
    r"\btalimatları yok say\b", r"\bsistem istemi\w*\b", r"تجاهل.{0,30}التعليمات", r"موجه النظام",
]), re.I | re.S)

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){8,}\b")
_SPACED = (re.compile(r"(?<=\b\w) (?=\w\b)"), re.compile(r"(?<=\b\w)[\-_.*](?=\w\b)"))
_QUOTED = re.compile(r"(?<!\w)[\"“«„'‘`]([^\"”»“’`\n]{8,}?)[\"”»“'’`](?!\w)")
# Outside the quotes, a question about an attack rather than one: "phrases like '...'".
_META = re.compile(r"\b(?:what is|what are|what does|explain|describe|phrases?|such as|like|example|e\.g\.|attackers?|"
                   r"malicious|detect\w*|means?|called|term|report|manual|guide|paper|recogni[sz]e|typed?)\b", re.I)


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() or c.isspace() for c in text)
    return text if text and letters / len(text) > 0.8 else None


_STOPWORDS = frozenset("the a an and or to of in is are was be it that this for on with you your as at by not i".split())
_WORD = re.compile(r"[^\W\d_]+|\d+")
_LEET_WORDS = re.compile(r"\b[a-z]*[a-z][0-9@$!][a-z0-9@$!]*\b|\b[0-9@$][a-z]+\w*", re.I)
_SPACED_RUN = re.compile(r"(?:\b\w[ \-_.*]){4,}\w\b")


def _gibberish(text: str) -> str:
    """The sentences that do not read as language (few common words): where ROT13 or reversed text hides."""
    odd = []
    for sentence in sentences(text, lines=True):
        words = [w.lower() for w in _WORD.findall(sentence)]
        if len(words) >= 3 and sum(w in _STOPWORDS for w in words) / len(words) < 0.12:
            odd.append(sentence.strip())
    return " ".join(odd)


def variants(text: str) -> list[tuple[str, str]]:
    """(how, text) pairs: the text itself, then each way it might be hiding an instruction. Costly
    variants are only made when the text shows the sign of one (digits inside words, letters spaced out,
    sentences that are not language), so long ordinary chunks are checked quickly."""
    out = [("plain", unicodedata.normalize("NFKC", text))]
    for match in _BASE64.finditer(text):
        token = match.group()
        try:
            decoded = _printable(base64.b64decode(token + "=" * (-len(token) % 4), validate=True))
        except (binascii.Error, ValueError):
            decoded = None
        if decoded:
            out.append(("base64", decoded))
    for match in _HEX.finditer(text):
        decoded = _printable(bytes.fromhex(match.group()))
        if decoded:
            out.append(("hex", decoded))
    odd = _gibberish(text)
    if odd:
        out.append(("rot13", codecs.decode(odd, "rot13")))
        out.append(("reversed", odd[::-1]))
    if len(_LEET_WORDS.findall(text)) >= 2:
        out.append(("leetspeak", text.lower().translate(_LEET)))
    if _SPACED_RUN.search(text):
        for spaced in _SPACED:
            despaced = spaced.sub("", text)
            if despaced != text:
                out.append(("spaced", " ".join(despaced.split())))
    return out


def without_quotes(text: str) -> str:
    """The text with its quotations replaced by a placeholder."""
    return _QUOTED.sub(" [quote] ", text)


class RuleShield:
    """Regular expressions for the shapes above, on the text and its decoded variants. `strict` (for
    documents): overrides must name instructions, and requests for the prompt or data are not looked
    for ("your configuration" is ordinary in a manual)."""

    name = "rules"
    stages = ("input", "context")

    def __init__(self, strict: bool = False):
        self.rules = RULES
        if strict:
            self.rules = [("injection", STRICT_OVERRIDE, 0.95)] + [
                r for r in RULES if r[1] is not LOOSE_OVERRIDE and r[0] in ("injection", "jailbreak")]

    def run(self, text: str, stage: str) -> Verdict:
        findings = self._scan(text)
        if findings and _QUOTED.search(text):
            # An attack quoted inside a question about attacks is a quotation, not an instruction.
            unquoted = without_quotes(text)
            if not self._scan(unquoted) and _META.search(unquoted):
                findings = [Finding("quoted_instruction", 0.5, shield=self.name)]
        return Verdict.of(self.name, stage, text, findings)

    def _scan(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for how, variant in variants(text):
            for category, pattern, score in self.rules:
                match = pattern.search(variant)
                if match:
                    findings.append(self._finding(category, score, how, match))
                    break
            match = MULTILINGUAL.search(variant)
            if match:
                findings.append(self._finding("injection", 0.9, how, match, multilingual=True))
            if findings:
                break  # the plainest variant that matches says it
        return findings

    def _finding(self, category: str, score: float, how: str, match: re.Match, multilingual: bool = False) -> Finding:
        shield = "rules" + (f".{how}" if how != "plain" else "") + (".multilingual" if multilingual else "")
        if how != "plain":
            category = "injection" if category != "prompt_extraction" else category
        return Finding(category, score, shield=shield)


class GuardrailShield:
    """The `prompt-guardrail` package's TF-IDF + logistic regression (import `guardify`): weights ship
    in the wheel. Catches plain overrides and DAN text; misses role play and encodings."""

    name = "prompt-guardrail"
    stages = ("input",)

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold

    @cached_property
    def _detect(self):
        with warnings.catch_warnings():  # pickles from an older scikit-learn; they load and score the same
            warnings.simplefilter("ignore")
            from guardify import detect

            detect("warm up")  # the first call loads the pickles
        return detect

    def run(self, text: str, stage: str) -> Verdict:
        # Quoted material is not an instruction; the rules look at the quotes themselves.
        result = self._detect(_QUOTED.sub(" ", text))
        score = float(result["score"]) if result["label"] == "injection" else 1.0 - float(result["score"])
        findings = [Finding("injection", score)] if score >= self.threshold else []
        return Verdict.of(self.name, stage, text, findings)
