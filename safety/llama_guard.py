"""Llama Guard through Llama Stack's safety API (`POST /v1/safety/run-shield`): the ollama, vllm
and cloud run configs carry an `inline::llama-guard` provider, and `docstack up` registers the
shield `llama-guard` when the profile's guard model is served (stack/profiles.py). docstack never
calls the model server itself."""

from __future__ import annotations

from docstack.safety.base import Finding, Verdict

from docstack.console import DocstackError

# Llama Guard 3's hazard codes, for the audit log and the refusal.
HAZARDS = {"S1": "violent crimes", "S2": "non-violent crimes", "S3": "sex-related crimes", "S4": "child sexual exploitation",
           "S5": "defamation", "S6": "specialized advice", "S7": "privacy", "S8": "intellectual property",
           "S9": "indiscriminate weapons", "S10": "hate", "S11": "suicide and self-harm", "S12": "sexual content",
           "S13": "elections", "S14": "code interpreter abuse"}
# The output stage shows Llama Guard the answer as the agent's turn of a conversation.
_OUTPUT_CONTEXT = "Answer my question from the documents."


class LlamaGuardShield:
    stages = ("input", "output")

    def __init__(self, stack_url: str, shield_id: str, timeout: float = 60.0):
        from llama_stack_client import LlamaStackClient

        self.name = f"llama-guard:{shield_id}"
        self.shield_id = shield_id
        self.stack_url = stack_url
        self._client = LlamaStackClient(base_url=stack_url, timeout=timeout, max_retries=0)

    def run(self, text: str, stage: str) -> Verdict:
        from llama_stack_client import APIConnectionError, APIStatusError

        messages = [{"role": "user", "content": text}]
        if stage == "output":
            messages = [{"role": "user", "content": _OUTPUT_CONTEXT}, {"role": "assistant", "content": text}]
        try:
            response = self._client.safety.run_shield(shield_id=self.shield_id, messages=messages)
        except APIConnectionError as exc:
            raise DocstackError(f"no Llama Stack server answers at {self.stack_url} for the Llama Guard shield") from exc
        except APIStatusError as exc:
            raise DocstackError(f"the stack's shield '{self.shield_id}' failed: {str(exc)[:200]}") from exc
        violation = response.violation
        if violation is None:
            return Verdict.of(self.name, stage, text, [])
        codes = str((violation.metadata or {}).get("violation_type", "")).split(",")
        hazard = ", ".join(HAZARDS.get(c.strip(), c.strip()) for c in codes if c.strip())
        return Verdict.of(self.name, stage, text,
                          [Finding("harmful", 1.0, shield=f"{self.name} ({hazard or 'unsafe'})")])
