"""The Python API that the CLI and the UI share. One object, sensible defaults:

    ds = DocStack()                       # settings from DOCSTACK_* variables
    ds.ingest(["docs/"], collection="handbook")
    for hit in ds.search("vacation policy", collection="handbook"): ...
    answer = ds.ask("How many vacation days?", collection="handbook")
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import time
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from docstack.console import DocstackError
from docstack.settings import Settings
from docstack.ingest.chunker import Chunker
from docstack.ingest.embedder import Embedder
from docstack.ingest.pipeline import IngestReport, Ingestor, ProgressCallback
from docstack.ingest.store import ChunkStore
from docstack.stack import profiles
from docstack.stack.client import StackClient
from docstack.safety.base import SafetyReport, Verdict
from docstack.safety.guard import Guard, Shields, refusal
from docstack.stack.rag import ABSTAIN_TEXT, SYSTEM_PROMPT, Answer, AnswerStream, PromptBuilder, cite, is_abstention
from docstack.stack.reranker import CrossEncoderReranker
from docstack.stack.retrieval import Filters, Hit, Mode, Retriever
from docstack.stack.services import ServiceManager, ServiceState

_COLLECTION_NAME = re.compile(r"^\.?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a leading dot: internal


class DocStack:
    def __init__(self, settings: Settings | None = None, **overrides):
        self.settings = settings or Settings(**overrides)
        self._stores: dict[str, ChunkStore] = {}

    # -- documents -----------------------------------------------------------------------
    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings.embedding_model, batch_size=self.settings.embed_batch)

    @cached_property
    def reranker(self) -> CrossEncoderReranker | None:
        return CrossEncoderReranker(self.settings.reranker) if self.settings.reranker else None

    def store(self, collection: str | None = None, create: bool = False) -> ChunkStore:
        name = collection or self.settings.collection
        if not _COLLECTION_NAME.match(name):
            raise DocstackError(f"collection name '{name}' is not valid: use letters, digits, '.', '_' or '-'")
        if name not in self._stores:
            path = self.settings.collections_dir / name
            if not create and not ChunkStore.exists(path):
                raise DocstackError(
                    f"collection '{name}' does not exist under {self.settings.collections_dir}; "
                    f"add documents with `docstack ingest PATH --collection {name}`"
                )
            self._stores[name] = ChunkStore(path, self.embedder.name, self.embedder.dimension)
        else:
            self._stores[name].refresh()  # another process (the CLI, the UI) may have written
        return self._stores[name]

    def collections(self) -> dict[str, dict]:
        root = self.settings.collections_dir
        names = sorted(p.name for p in root.iterdir()
                       if ChunkStore.exists(p) and not p.name.startswith(".")) if root.is_dir() else []
        return {name: self.store(name).stats() for name in names}

    def ingest(
        self, paths: Iterable[Path | str], collection: str | None = None,
        on_progress: ProgressCallback | None = None, sync: bool = False,
    ) -> IngestReport:
        """Add files and folders; with `sync`, also forget files gone from the given folders."""
        chunker = Chunker(self.embedder.count_tokens, self.settings.chunk_tokens, self.settings.chunk_overlap)
        store = self.store(collection, create=True)
        screen = self.shields.chunk_verdict if self.shields else None
        ingestor = Ingestor(self.embedder, chunker, write_batch=self.settings.write_batch, screen=screen)
        return ingestor.run(paths, store, on_progress, sync=sync)

    def remove(self, paths: Iterable[Path | str], collection: str | None = None) -> list[str]:
        """Forget documents by file path, or all documents under a folder; returns their paths."""
        store = self.store(collection)
        wanted = [str(Path(p).resolve()) for p in paths]
        gone = [d["path"] for d in store.documents()
                if any(d["path"] == w or d["path"].startswith(w.rstrip(os.sep) + os.sep) for w in wanted)]
        for path in gone:
            store.remove(path)
        store.flush()
        return gone

    def delete_collection(self, collection: str) -> None:
        store = self.store(collection)
        store.close()
        del self._stores[collection]
        shutil.rmtree(store.path)

    def reindex(self, collection: str | None = None, on_progress: ProgressCallback | None = None) -> IngestReport:
        """Rebuild a collection from its source files with the current embedding model and chunking."""
        name = collection or self.settings.collection
        path = self.settings.collections_dir / name
        if not ChunkStore.exists(path):
            raise DocstackError(f"collection '{name}' does not exist")
        sources = ChunkStore.document_paths(path)
        staging = f".{name}.reindex"
        shutil.rmtree(self.settings.collections_dir / staging, ignore_errors=True)
        report = self.ingest(sources, collection=staging, on_progress=on_progress)
        self._stores.pop(name, None)
        self._stores.pop(staging, None)
        old = path.with_name(f".{name}.old")
        shutil.rmtree(old, ignore_errors=True)
        path.rename(old)
        (self.settings.collections_dir / staging).rename(path)
        shutil.rmtree(old)
        return report

    def search(self, query: str, collection: str | None = None, k: int | None = None, mode: Mode | None = None,
               filters: Filters | None = None) -> list[Hit]:
        if not query.strip():
            raise DocstackError("the query is empty")
        retriever = Retriever(self.store(collection), self.embedder, self.reranker)
        return retriever.run(query, k or self.settings.top_k, mode or self.settings.search_mode, filters)

    # -- safety --------------------------------------------------------------------------
    @cached_property
    def shields(self) -> Shields | None:
        """The safety shields (None with DOCSTACK_SAFETY=false)."""
        if not self.settings.safety:
            return None
        return Shields(self.settings, SYSTEM_PROMPT, allowed_prompt_text=[ABSTAIN_TEXT], embedder=self.embedder)

    def guard(self, collection: str | None = None) -> Guard | None:
        return self.shields.guard(collection or self.settings.collection) if self.shields else None

    def check(self, text: str, stage: str = "input", collection: str | None = None) -> Verdict:
        """One text through one stage's shields and the policy (`docstack safety check`)."""
        if self.shields is None:
            raise DocstackError("safety shields are off (DOCSTACK_SAFETY=false)")
        return self.shields.guard(collection or self.settings.collection).check(text, stage)

    def safety_status(self) -> dict:
        if self.shields is None:
            return {"enabled": False}
        return {"enabled": True, "policy": self.shields.base_policy.source, "policy_version":
                self.shields.base_policy.version, "harmful_content": self.shields.harmful_check,
                "llama_guard": self.settings.safety_llama_guard, "audit_log": str(self.shields.audit.path)}

    # -- answers -------------------------------------------------------------------------
    @cached_property
    def client(self) -> StackClient:
        return StackClient(self.settings.stack_url, timeout=self.settings.request_timeout)

    def stream(
        self, question: str, collection: str | None = None, model: str | None = None, k: int | None = None,
        mode: Mode | None = None, filters: Filters | None = None,
    ) -> AnswerStream:
        """The answer as it is written; iterate it for text, then read `.answer`.

        With shields on, the question is checked first (a blocked question never reaches the stack),
        flagged chunks are dropped or quoted, and the answer is redacted sentence by sentence."""
        started = time.perf_counter()
        safety = SafetyReport()
        guard = self.guard(collection)
        if guard is not None:
            verdict = guard.check_input(question)
            safety.record(verdict)
            if verdict.blocked:
                return self._refused(verdict, safety, model or self.settings.model_id, started)
        model = model or self._default_model()
        hits = self.search(question, collection, k or self.settings.ask_k, mode, filters)
        builder = PromptBuilder(
            profiles.token_counter(self.settings), self.settings.n_ctx, self.settings.max_answer_tokens
        )
        # Nothing close enough to the question: abstain without asking the model to guess.
        evidence = [h for h in hits if h.score >= self.settings.min_score]
        quoted: set[int] = set()
        if guard is not None:
            screened = guard.screen(evidence, self.store(collection).safety([h.chunk_id for h in evidence]))
            evidence, quoted = screened.hits, screened.quoted
            safety.dropped_chunks = len(screened.dropped)
            safety.redactions += len(screened.stripped)  # passages packed without their flagged sentences
        prompt = builder.run(question, evidence, quoted)
        output = guard.output(prompt.hits, screened.tokens) if guard is not None and prompt.hits else None

        def finish(text: str, first_token: float | None) -> Answer:
            text = text.strip()
            if output is not None:
                safety.redactions += output.report.redactions
                if output.report.blocked:
                    safety.blocked, safety.stage = True, output.report.stage
                    safety.category, safety.shield = output.report.category, output.report.shield
            abstained = not prompt.hits or is_abstention(text)
            citations: list = []
            if not abstained and not safety.blocked:
                vectors = self.store(collection).vectors([h.chunk_id for h in prompt.hits])
                text, citations = cite(text, prompt.hits, self.embedder.embed, vectors)
                if output is not None:  # a citation quotes its passage: the same redactions apply
                    citations = [dataclasses.replace(c, text=output.scrub(c.text)) for c in citations]
            return Answer(
                answer=text if prompt.hits else ABSTAIN_TEXT,
                citations=citations,
                model=model,
                abstained=abstained,
                seconds=round(time.perf_counter() - started, 3),
                first_token_seconds=None if first_token is None else round(first_token, 3),
                prompt_tokens=prompt.tokens,
                context=prompt.hits,
                safety=safety,
            )

        if not prompt.hits:
            return AnswerStream(iter([ABSTAIN_TEXT]), finish)
        deltas = self.client.chat_stream(
            model, prompt.messages, self.settings.max_answer_tokens, self.settings.temperature
        )
        return AnswerStream(output.filter(deltas) if output is not None else deltas, finish)

    @staticmethod
    def _refused(verdict: Verdict, safety: SafetyReport, model: str, started: float) -> AnswerStream:
        """A blocked question: the refusal names the stage and category; the stack is never called."""
        text = refusal(verdict)

        def finish(_text: str, first_token: float | None) -> Answer:
            return Answer(answer=text, citations=[], model=model, abstained=False,
                          seconds=round(time.perf_counter() - started, 3), first_token_seconds=first_token,
                          safety=safety)

        return AnswerStream(iter([text]), finish)

    def ask(self, question: str, collection: str | None = None, model: str | None = None, k: int | None = None,
            mode: Mode | None = None, filters: Filters | None = None) -> Answer:
        return self.stream(question, collection, model, k, mode, filters).result()

    def _default_model(self) -> str:
        available = self.client.models()
        wanted = self.settings.model_id
        for candidate in (wanted, self.settings.model_alias):
            if candidate in available:
                return candidate
        raise DocstackError(
            f"the stack at {self.settings.stack_url} serves no model {wanted} (it has: {', '.join(available) or 'none'})"
        )

    # -- services ------------------------------------------------------------------------
    @cached_property
    def services(self) -> ServiceManager:
        return ServiceManager(self.settings.run_dir, self.settings.log_dir, self.settings.startup_timeout)

    def up(self, with_ui: bool = True) -> list[ServiceState]:
        started = []
        for service in profiles.services(self.settings, with_ui=with_ui):
            self.services.start(service)
            started.append(self.services.state(service))
        (self.settings.run_dir / "profile").write_text(self.settings.profile)
        return started

    def down(self) -> list[str]:
        return [name for name in ("ui", "stack", "model") if self.services.stop(name)]

    def status(self) -> dict:
        marker = self.settings.run_dir / "profile"
        profile = marker.read_text().strip() if marker.is_file() else self.settings.profile
        services = profiles.services(self.settings, with_ui=True, resolve=False)
        states = {s.name: self.services.state(s) for s in services}
        return {
            "profile": profile,
            "home": str(self.settings.home),
            "default_model": self.settings.model_id,
            "safety": self.safety_status(),
            **{name: state.to_json() for name, state in states.items()},
            "collections": self.collections(),
        }
