"""A keyword check for requests for seriously harmful help (weapons, drugs, malware, violence,
abuse of children, fraud), used where no Llama Guard model is served.

It is much weaker than Llama Guard: it knows a few dozen phrasings in English only, and anything
worded around them passes. `docstack status` says so (`HarmfulShield.strength`)."""

from __future__ import annotations

import re

from docstack.safety.base import Finding, Verdict

_MAKE = r"(?:make|making|build|building|synthesi[sz]e|cook|produce|create|write|assemble|brew|manufacture|3d.print)"
PATTERNS = [
    re.compile(rf"\b{_MAKE}\b.{{0,40}}\b(?:pipe ?bombs?|bombs?|explosives?|ied|napalm|thermite|nerve (?:gas|agents?)|"
               r"sarin|ricin|anthrax|bioweapons?|chemical weapons?|meth(?:amphetamine)?|fentanyl|crack cocaine|"
               r"ransomware|malware|keyloggers?|computer virus|untraceable (?:guns?|firearms?)|ghost guns?|"
               r"toxic gas|poison gas|silencer)\b", re.I | re.S),
    re.compile(r"\b(?:untraceable|ghost) (?:guns?|firearms?)\b|\bnerve gas\b|\bransomware\b.{0,60}\b(?:encrypt|bitcoin|ransom)",
               re.I | re.S),
    re.compile(r"\b(?:poison|kill|murder|hurt|harm|strangle|stab|shoot)\w*\s+(?:someone|somebody|a person|people|my (?:wife|"
               r"husband|boss|neighbou?r|ex|partner|teacher)|him|her)\b", re.I),
    re.compile(r"\b(?:to hurt|to harm|to kill) (?:people|someone|somebody|a person)\b|\bwithout getting caught\b", re.I),
    re.compile(r"\b(?:hack|break|get) into\b.{0,40}\b(?:account|e-?mail|phone|bank|vpn|network|computer)\b", re.I | re.S),
    re.compile(r"\blaunder(?:ing)? money\b|\bmoney launder\w*", re.I),
    re.compile(r"\b(?:child|kid|minor|boy|girl|teen)\w*\b.{0,50}\b(?:meet me|in secret|don't tell|send (?:me )?(?:photos|"
               r"pictures))", re.I | re.S),
    re.compile(r"\bdisable\b.{0,30}\balarm\b.{0,40}\b(?:bank|store|house|museum)\b", re.I | re.S),
]


class HarmfulShield:
    name = "harmful-keywords"
    stages = ("input", "output")
    strength = "weak: English keyword rules, no model (Llama Guard is far stronger)"

    def run(self, text: str, stage: str) -> Verdict:
        findings = [Finding("harmful", 0.8) for p in PATTERNS if p.search(text)][:1]
        return Verdict.of(self.name, stage, text, findings)
