"""The safety API over docstack's Guard: run_shield -> the stage's shields and the policy."""

from __future__ import annotations

import asyncio
from pathlib import Path

from docstack.safety.base import STAGES
from docstack.safety.guard import Shields, refusal
from docstack.safety.stack_provider.config import DocstackSafetyConfig
from llama_stack.providers.utils.inference.prompt_adapter import interleaved_content_as_str
from llama_stack.providers.utils.safety import ShieldToModerationMixin
from llama_stack_api import (
    GetShieldRequest,
    RunShieldRequest,
    RunShieldResponse,
    Safety,
    SafetyViolation,
    Shield,
    ShieldsProtocolPrivate,
    ShieldStore,
    ViolationLevel,
)

from docstack.settings import Settings


class DocstackSafetyImpl(ShieldToModerationMixin, Safety, ShieldsProtocolPrivate):
    shield_store: ShieldStore

    def __init__(self, config: DocstackSafetyConfig):
        self.config = config
        self.shields: Shields | None = None

    async def initialize(self) -> None:
        from docstack.index.embedder import Embedder

        settings = Settings(home=Path(self.config.home).expanduser(), profile=self.config.profile,
                            safety_policy=Path(self.config.policy) if self.config.policy else None)
        # No system prompt: the prompt-leak check runs on the answer as docstack streams it, not here.
        self.shields = Shields(settings, embedder=Embedder(settings.embedding_model, models_dir=settings.models_dir))

    async def shutdown(self) -> None:
        pass

    async def register_shield(self, shield: Shield) -> None:
        if shield.provider_resource_id not in STAGES:
            raise ValueError(f"docstack shields are named by stage ({', '.join(STAGES)}), "
                             f"not '{shield.provider_resource_id}'")

    async def unregister_shield(self, identifier: str) -> None:
        pass

    async def run_shield(self, request: RunShieldRequest) -> RunShieldResponse:
        shield = await self.shield_store.get_shield(GetShieldRequest(identifier=request.shield_id))
        stage = shield.provider_resource_id
        text = "\n".join(interleaved_content_as_str(m.content) for m in request.messages if m.role != "system")
        # The shields are CPU work; keep the server's event loop free.
        verdict = await asyncio.to_thread(self.shields.guard().check, text, stage)
        if not verdict.flagged:
            return RunShieldResponse(violation=None)
        return RunShieldResponse(violation=SafetyViolation(
            violation_level=ViolationLevel.ERROR if verdict.blocked else ViolationLevel.WARN,
            user_message=refusal(verdict.stage, verdict.category) if verdict.blocked else None,
            metadata={"violation_type": verdict.category, "category": verdict.category, "shield": verdict.shield,
                      "score": verdict.score, "action": verdict.action, "redactions": verdict.redactions,
                      "text": verdict.text if verdict.redactions else None},
        ))
