"""The one entry point to the shields: `Shields` (built once from Settings: the detectors, the
policy, the audit log) hands out a `Guard` per collection, which runs the layered checks of a stage
and applies the policy to what they find.

    guard = Shields(settings).guard("handbook")
    guard.check_input(question)            # Verdict: blocked?
    guard.screen(hits, stored_verdicts)    # chunks to pack, to quote, dropped
    for text in guard.output(hits, tokens).filter(deltas): ...   # redacted as it streams
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from docstack.safety.audit import AuditLog
from docstack.safety.base import Finding, SafetyReport, Verdict
from docstack.safety.context import ChunkVerdict, ContextShield
from docstack.safety.harmful import HarmfulShield
from docstack.safety.injection import GuardrailShield, RuleShield, without_quotes
from docstack.safety.output import CanaryShield, LinkShield, PromptLeakShield
from docstack.safety.pii import PIIShield, SecretShield
from docstack.safety.policy import SEVERITY, Policy

from docstack.settings import Settings
from docstack.stack.client import StackClient
from docstack.text import sentence_ends

log = logging.getLogger(__name__)

STAGE_WORDS = {"input": "question", "context": "retrieved text", "output": "answer"}


def refusal(stage: str | None, category: str | None) -> str:
    """The one wording of a refusal, wherever it is shown: instead of an answer, after the part of
    an answer already shown, in the web app and in an exported chat."""
    what = STAGE_WORDS.get(stage or "", "request")
    return (f"Refused by docstack's safety shields: the {what} was blocked at the {stage or 'safety'} stage "
            f"(category: {category}).")


@dataclass(frozen=True)
class SafetyStatus:
    """The safety policy in force, for `docstack status` and the web app's Status page."""

    enabled: bool
    policy: str | None = None
    policy_version: str | None = None
    harmful_content: str | None = None
    llama_guard: str | None = None
    audit_log: str | None = None

    def to_json(self) -> dict:
        if not self.enabled:
            return {"enabled": False}
        return dataclasses.asdict(self)


class Shields:
    """The detectors, loaded once (some take seconds) and shared by every guard."""

    def __init__(self, settings: Settings, system_prompt: str = "", allowed_prompt_text: Sequence[str] = (),
                 embedder=None, client: StackClient | None = None):
        self.settings = settings
        self.client = client  # the stack, for a Llama Guard shield it serves
        self.embedder = embedder  # the project's MiniLM, for the injection classifier (None: no classifier)
        self.base_policy = Policy.load(settings.safety_policy, settings.profile)
        self.rules = RuleShield()
        self.harmful = HarmfulShield()
        self.context = ContextShield()
        self.secrets = SecretShield()
        self.system_prompt = system_prompt
        self.allowed_prompt_text = allowed_prompt_text
        self.audit = AuditLog(settings.log_dir / "safety.jsonl")

    def with_client(self, client: StackClient) -> Shields:
        """These shields, loaded once, calling the stack through `client` (a signed-in user's)."""
        view = copy.copy(self)
        view.client = client
        view.__dict__.pop("llama_guard", None)
        return view

    @cached_property
    def guardrail(self) -> GuardrailShield:
        return GuardrailShield(self.base_policy.thresholds.get("prompt_guardrail", 0.5))

    @cached_property
    def classifier(self):
        """The learned input shield; None without an embedder (a check run with no model at hand)."""
        if self.embedder is None or not self.base_policy.shields.get("classifier", True):
            return None
        from docstack.safety.classifier import MODEL, InjectionClassifier, InjectionModel, encoders

        model = InjectionModel.load(self.settings.safety_model or MODEL)
        embeds = encoders(model.encoders, self.embedder, self.settings.models_dir)
        return InjectionClassifier(model, embeds, self.base_policy.thresholds.get("classifier"))

    @cached_property
    def pii(self) -> PIIShield:
        return PIIShield(ner=self.settings.safety_names and self.base_policy.shields.get("names", True))

    @cached_property
    def llama_guard(self):
        if not self.settings.safety_llama_guard:
            return None
        from docstack.safety.llama_guard import LlamaGuardShield

        client = self.client or StackClient(self.settings.stack_url, timeout=self.settings.request_timeout)
        return LlamaGuardShield(client, self.settings.safety_llama_guard)

    @property
    def harmful_check(self) -> str:
        """What decides harmful content, in words (for `docstack status`)."""
        if self.settings.safety_llama_guard:
            return f"Llama Guard shield '{self.settings.safety_llama_guard}' through the stack"
        return f"keyword rules only ({HarmfulShield.strength})"

    def status(self) -> SafetyStatus:
        return SafetyStatus(True, self.base_policy.source, self.base_policy.version, self.harmful_check,
                            self.settings.safety_llama_guard, str(self.audit.path))

    def warm(self) -> None:
        """Load what loads slowly (spaCy starts in the background)."""
        if self.base_policy.shields.get("prompt_guardrail", True):
            self.guardrail._detect
        if self.classifier is not None:
            self.classifier.run("warm up", "input")  # loads its weights and the encoder
        self.pii

    def guard(self, collection: str | None = None) -> Guard:
        policy = Policy.load(self.settings.safety_policy, self.settings.profile, collection)
        return Guard(self, policy, collection)

    def chunk_verdict(self, text: str) -> str:
        """The stored verdict of one chunk, made at ingest."""
        return self.context.verdict(text, self.base_policy.version).dumps()


@dataclass
class Screened:
    """The retrieved chunks after the context check."""

    hits: list
    quoted: set[int] = field(default_factory=set)
    dropped: list[int] = field(default_factory=list)
    stripped: list[int] = field(default_factory=list)  # packed without their flagged sentences
    tokens: set[str] = field(default_factory=set)  # canaries and links of flagged chunks


class Guard:
    def __init__(self, shields: Shields, policy: Policy, collection: str | None = None):
        self.shields = shields
        self.policy = policy
        self.collection = collection

    # -- decisions -----------------------------------------------------------------------
    def decide(self, stage: str, text: str, verdicts: Iterable[Verdict], chunk_ids: Sequence[int] = (),
               audit: bool = True) -> Verdict:
        """Apply the policy to the shields' findings: block, redact, or let pass (and log)."""
        acted = [(self.policy.action(stage, f.category), f) for v in verdicts for f in v.findings]
        acted = [(a, f) for a, f in acted if a != "allow"]
        if not acted:
            return Verdict(stage, text)
        action, top = max(acted, key=lambda af: (SEVERITY[af[0]], af[1].score))
        blocked = action == "block"
        spans = [f for a, f in acted if a == "redact" and f.start is not None]
        redacted, count = (text, 0) if blocked else redact(text, spans)
        verdict = Verdict(stage, redacted, blocked=blocked, flagged=True, category=top.category, shield=top.shield,
                          score=top.score, redactions=count, findings=tuple(f for _, f in acted), action=action)
        if audit:
            self.shields.audit.write(stage, text, action, top.category, top.shield, self.collection, chunk_ids,
                                     top.score, count)
        return verdict

    def _blocks(self, stage: str, verdict: Verdict) -> bool:
        return any(self.policy.action(stage, f.category) == "block" for f in verdict.findings)

    def check(self, text: str, stage: str) -> Verdict:
        """Any stage, for `docstack safety check`: the decided verdict, with the best score found."""
        if stage == "input":
            return self.check_input(text)
        if stage == "context":
            return self.decide("context", text, [self.shields.context.run(text)])
        return self.decide("output", text, self._output_verdicts(text, LinkShield(), CanaryShield()))

    # -- input ---------------------------------------------------------------------------
    def check_input(self, text: str) -> Verdict:
        """Cheap shields first; the first one whose finding the policy blocks settles it."""
        verdicts: list[Verdict] = []
        shields = [self.shields.rules, self.shields.harmful]
        if self.policy.shields.get("prompt_guardrail", True):
            shields.append(self.shields.guardrail)
        if self.shields.classifier is not None:
            shields.append(self.shields.classifier)
        if self.shields.llama_guard is not None:
            shields.append(self.shields.llama_guard)
        seen = text
        for shield in shields:
            verdict = shield.run(seen, "input")
            verdicts.append(verdict)
            if self._blocks("input", verdict):
                break
            if verdict.category == "quoted_instruction":
                # The rules found the question around the quotation clean; the learned models cannot
                # tell quoting an attack from making one, so they judge that question alone.
                seen = without_quotes(text)
        return self.decide("input", text, verdicts)

    # -- context -------------------------------------------------------------------------
    def screen(self, hits: Sequence, stored: dict[int, str | None]) -> Screened:
        """Drop or quote flagged chunks, by their stored verdicts (re-checked if made under another
        policy version, or missing: a store from before the shields)."""
        result = Screened(hits=[])
        for hit in hits:
            verdict = ChunkVerdict.loads(stored.get(hit.chunk_id))
            if verdict is None or verdict.version != self.shields.base_policy.version:
                verdict = self.shields.context.verdict(hit.text, self.shields.base_policy.version)
            action = self.policy.action("context", verdict.category) if verdict.flagged else "allow"
            if verdict.flagged:
                result.tokens.update(verdict.canaries)
                result.tokens.update(verdict.links)
                self.shields.audit.write("context", hit.text, action, verdict.category, verdict.shield,
                                         self.collection, [hit.chunk_id], verdict.score)
            if action == "strip":
                text = self.shields.context.strip(hit.text, verdict)
                if text:
                    result.stripped.append(hit.chunk_id)
                    result.hits.append(dataclasses.replace(hit, text=text))
                    continue
                action = "drop"  # nothing but the planted text
            if action in ("drop", "block"):
                result.dropped.append(hit.chunk_id)
                continue
            if action == "quote":
                result.quoted.add(hit.chunk_id)
            result.hits.append(hit)
        return result

    # -- output --------------------------------------------------------------------------
    def output(self, hits: Sequence, tokens: Iterable[str] = ()) -> OutputFilter:
        links = LinkShield.for_texts(h.text for h in hits)
        # Links the context shield took from flagged chunks never count as "in the documents".
        tokens = set(tokens)
        links.allowed -= {t for t in links.allowed if any(t in tok for tok in tokens)}
        secrets = {h.text[f.start:f.end] for h in hits for f in self.shields.secrets.run(h.text, "output").findings
                   if f.start is not None and self.policy.action("output", f.category) == "redact"}
        known = CanaryShield(secrets, "secret", "[secret removed]", name="passage-secrets")
        return OutputFilter(self, links, CanaryShield(tokens), [h.chunk_id for h in hits], known)

    def _output_verdicts(self, text: str, links: LinkShield, canary: CanaryShield,
                         known: CanaryShield | None = None) -> list[Verdict]:
        shields = [self.shields.secrets, self.shields.pii, links, canary, self.shields.harmful]
        return [s.run(text, "output") for s in shields + ([known] if known else [])]

    @cached_property
    def prompt_leak(self) -> PromptLeakShield:
        return PromptLeakShield(self.shields.system_prompt, self.shields.allowed_prompt_text)


class NoGuard:
    """Safety off (DOCSTACK_SAFETY=false): the same calls as a Guard, letting everything through."""

    def check_input(self, text: str) -> Verdict:
        return Verdict("input", text)

    def screen(self, hits: Sequence, stored: dict[int, str | None]) -> Screened:
        return Screened(hits=list(hits))

    def output(self, hits: Sequence, tokens: Iterable[str] = ()) -> PassThrough:
        return PassThrough()


class PassThrough:
    """An output filter that changes nothing."""

    def __init__(self) -> None:
        self.report = SafetyReport()

    def filter(self, deltas: Iterable[str]) -> Iterator[str]:
        return iter(deltas)

    def scrub(self, text: str) -> str:
        return text


# A segment ends at a sentence end or a line break (docstack.text); code fences and key blocks are
# held whole.
# Words that can be shown before their sentence ends: letters and plain punctuation only. Anything
# personal data, secrets, links and canaries are made of (digits, @, :, /, =, brackets...) holds
# the rest of the sentence back until the whole sentence can be checked.
_PLAIN_RUN = re.compile(r"[A-Za-z][A-Za-z'’,;\"()-]*(?:\s+[A-Za-z][A-Za-z'’,;\"()-]*)*\s+")
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")


class OutputFilter:
    """Checks the answer sentence by sentence as it streams and emits it redacted; on a block it
    stops and emits the refusal instead. `report` says what happened."""

    def __init__(self, guard: Guard, links: LinkShield, canary: CanaryShield, chunk_ids: Sequence[int] = (),
                 known: CanaryShield | None = None):
        self.guard = guard
        self.links = links
        self.canary = canary
        self.known = known  # the secrets the passages hold, redacted wherever they appear
        self.chunk_ids = list(chunk_ids)
        self.report = SafetyReport()
        self._raw = ""
        self._pending = ""

    def filter(self, deltas: Iterable[str]) -> Iterator[str]:
        for delta in deltas:
            self._pending += delta
            cut = self._safe_cut()
            if cut:
                segment, self._pending = self._pending[:cut], self._pending[cut:]
                shown = self._check(segment)
                if shown is None:
                    yield refusal_sentence(self.report)
                    return
                yield shown
        if self._pending:
            shown = self._check(self._pending, final=True)
            yield refusal_sentence(self.report) if shown is None else shown
        elif self.guard.shields.llama_guard is not None and self._check_llama_guard() is None:
            yield refusal_sentence(self.report)

    def _safe_cut(self) -> int:
        """Where the text that can be checked and shown ends: never inside a code fence or a key block."""
        if self._pending.count("```") % 2:
            return 0
        floor = 0
        for begin in _KEY_BEGIN.finditer(self._pending):
            end = _KEY_END.search(self._pending, begin.end())
            if end is None:
                return 0
            floor = max(floor, end.end())
        cuts = [end for end in sentence_ends(self._pending, lines=True) if end >= floor]
        if cuts:
            return cuts[-1]
        if floor == 0:  # mid-sentence: show the plain words so far (never the word being written)
            plain = _PLAIN_RUN.match(self._pending)
            return plain.end() if plain else 0
        return floor

    def _check(self, segment: str, final: bool = False) -> str | None:
        self._raw += segment
        verdicts = self.guard._output_verdicts(segment, self.links, self.canary, self.known)
        verdicts.append(self.guard.prompt_leak.run(self._raw, "output"))
        # Phrases can span the pieces a sentence is shown in: the harmful check reads all so far.
        verdicts.append(self.guard.shields.harmful.run(self._raw, "output"))
        verdict = self.guard.decide("output", segment, verdicts, self.chunk_ids)
        self.report.record(verdict)
        if verdict.blocked:
            return None
        if final and self.guard.shields.llama_guard is not None and self._check_llama_guard() is None:
            return None
        return verdict.text

    def scrub(self, text: str) -> str:
        """`text` with what the output policy redacts removed, never blocked (citations' passages)."""
        verdicts = self.guard._output_verdicts(text, self.links, self.canary, self.known)
        return self.guard.decide("output", text, [v for v in verdicts if v.shield != "harmful-keywords"],
                                 audit=False).text

    def _check_llama_guard(self) -> str | None:
        """Llama Guard reads the whole answer once, at the end (a model call per sentence is too slow)."""
        verdict = self.guard.decide("output", self._raw, [self.guard.shields.llama_guard.run(self._raw, "output")],
                                    self.chunk_ids)
        self.report.record(verdict)
        return None if verdict.blocked else self._raw


def refusal_sentence(report: SafetyReport) -> str:
    """What replaces the rest of an answer the output shield stopped."""
    return f"\n\n[{refusal(report.stage, report.category)}]"


def redact(text: str, findings: Sequence[Finding]) -> tuple[str, int]:
    """Replace each found span with its label; overlapping spans merge into the outermost."""
    spans = sorted(((f.start, f.end, f.label or f"[{f.category} removed]") for f in findings), key=lambda s: (s[0], -s[1]))
    merged: list[list] = []
    for start, end, label in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            continue
        merged.append([start, end, label])
    for start, end, label in reversed(merged):
        text = text[:start] + label + text[end:]
    return text, len(merged)
