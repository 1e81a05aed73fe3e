"""Llama Guard through Llama Stack's safety API (`POST /v1/safety/run-shield`): the ollama, vllm
and cloud run configs carry an `inline::llama-guard` provider, and `docstack up` registers the
shield `llama-guard` when the profile's guard model is served (stack/profiles.py). docstack never
calls the model server itself."""

from __future__ import annotations

from docstack.safety.base import Finding, Verdict
from docstack.stack.client import StackClient

# Llama Guard 3's hazard codes, for the audit log and the refusal.
HAZARDS = {"S1": "violent crimes", "S2": "non-violent crimes", "S3": "sex-related crimes", "S4": "child sexual exploitation",
           "S5": "defamation", "S6": "specialized advice", "S7": "privacy", "S8": "intellectual property",
           "S9": "indiscriminate weapons", "S10": "hate", "S11": "suicide and self-harm", "S12": "sexual content",
           "S13": "elections", "S14": "code interpreter abuse"}
# The output stage shows Llama Guard the answer as the agent's turn of a conversation.
_OUTPUT_CONTEXT = "Answer my question from the documents."


class LlamaGuardShield:
    stages = ("input", "output")

    def __init__(self, client: StackClient, shield_id: str):
        self.name = f"llama-guard:{shield_id}"
        self.shield_id = shield_id
        self.client = client

    def run(self, text: str, stage: str) -> Verdict:
        messages = [{"role": "user", "content": text}]
        if stage == "output":
            messages = [{"role": "user", "content": _OUTPUT_CONTEXT}, {"role": "assistant", "content": text}]
        violation = self.client.run_shield(self.shield_id, messages)
        if violation is None:
            return Verdict.of(self.name, stage, text, [])
        codes = str((violation.metadata or {}).get("violation_type", "")).split(",")
        hazard = ", ".join(HAZARDS.get(c.strip(), c.strip()) for c in codes if c.strip())
        return Verdict.of(self.name, stage, text,
                          [Finding("harmful", 1.0, shield=f"{self.name} ({hazard or 'unsafe'})")])
