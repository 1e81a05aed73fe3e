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
import base64
import mimetypes
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
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
from docstack.stack.backends import OllamaBackend, PullProgress
from docstack.stack.catalogue import ModelSpec
from docstack.stack.conversation import QuestionRewriter, Turn
from docstack.stack.evidence import Evidence, PagePreviews, evidence
from docstack.stack.rag import ABSTAIN_TEXT, SYSTEM_PROMPT, Answer, AnswerStream, cite, is_abstention
from docstack.stack.reranker import CrossEncoderReranker
from docstack.stack.retrieval import Filters, Hit, Mode, Retriever
from docstack.stack.router import Fallback, Router
from docstack.stack.model_queue import ModelQueue, WaitCallback
from docstack.stack.services import ServiceManager, ServiceState

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


@dataclass
class ModelStatus:
    spec: ModelSpec
    usable: bool
    reason: str

    def to_json(self) -> dict:
        return {**self.spec.model_dump(), "stack_id": self.spec.stack_id, "usable": self.usable, "reason": self.reason}


def image_data_url(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0]
    if kind not in IMAGE_TYPES:
        raise DocstackError(f"{path}: not an image docstack can send (png, jpeg, gif or webp)")
    try:
        return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode()
    except OSError as exc:
        raise DocstackError(f"{path}: cannot be read ({exc.strerror})") from exc


def _pull_hint(settings: Settings) -> str:
    return " (`docstack models pull`)" if settings.profile == "ollama" else ""


_COLLECTION_NAME = re.compile(r"^\.?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a leading dot: internal


@dataclass(frozen=True)
class DocumentInfo:
    """A document as a collection records it."""

    path: str
    source: str
    pages: int
    chunks: int
    bytes: int
    ingested_at: datetime

    @property
    def name(self) -> str:
        return Path(self.source).name


class DocStack:
    def __init__(self, settings: Settings | None = None, **overrides):
        self.settings = settings or Settings(**overrides)
        self._stores: dict[str, ChunkStore] = {}

    # -- documents -----------------------------------------------------------------------
    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings.embedding_model, batch_size=self.settings.embed_batch,
                        models_dir=self.settings.models_dir, precision=self.settings.embed_precision)

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

    def create_collection(self, collection: str) -> None:
        self.store(collection, create=True)

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return [DocumentInfo(d["path"], d["source"], d["pages"], d["chunks"], d["bytes"],
                             datetime.fromtimestamp(d["ingested_at"]))
                for d in self.store(collection).documents()]

    def index_bytes(self, collection: str | None = None) -> int:
        """Disk space of a collection: its SQLite database, WAL and vector index."""
        return sum(p.stat().st_size for p in self.store(collection).path.rglob("*") if p.is_file())

    def save_upload(self, name: str, data: bytes, collection: str | None = None) -> Path:
        """Keep an uploaded file under `home/uploads/<collection>/` so it can be ingested like any
        other file (and re-ingested, and previewed, later)."""
        collection = collection or self.settings.collection
        self.store(collection, create=True)  # checks the name before it becomes a folder
        filename = Path(name.replace("\\", "/")).name.strip()
        if not filename or filename.startswith("."):
            raise DocstackError(f"'{name}' is not a usable file name")
        folder = self.settings.home / "uploads" / collection
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / filename
        partial = folder / f".{filename}.part"
        partial.write_bytes(data)
        os.replace(partial, target)
        return target

    def ingest_uploads(
        self, files: Sequence[tuple[str, bytes]], collection: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> tuple[IngestReport, list[Path]]:
        """Save uploaded (name, content) pairs, then ingest them like any files; a file that fails
        is reported and not kept. Returns the report and where each file was saved."""
        saved, unusable = [], []
        for name, data in files:
            try:
                saved.append(self.save_upload(name, data, collection))
            except DocstackError as exc:
                unusable.append({"path": name, "error": str(exc)})
        report = self.ingest(saved, collection, on_progress)
        for error in report.errors:
            if Path(error["path"]) in saved:
                Path(error["path"]).unlink(missing_ok=True)
        report.errors = unusable + report.errors
        return report, saved

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
        return Shields(self._with_llama_guard(), SYSTEM_PROMPT, allowed_prompt_text=[ABSTAIN_TEXT],
                       embedder=self.embedder)

    def _with_llama_guard(self) -> Settings:
        """The settings, naming the stack's Llama Guard shield when a profile's `up` registered one
        (it does when the guard model is served) and none is named already."""
        if self.settings.safety_llama_guard or self.settings.profile == "embedded":
            return self.settings
        try:
            served = profiles.LLAMA_GUARD_SHIELD in self.client.shields()
        except DocstackError:
            return self.settings
        return self.settings.model_copy(update={"safety_llama_guard": profiles.LLAMA_GUARD_SHIELD}) if served \
            else self.settings

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
                "llama_guard": self.shields.settings.safety_llama_guard, "audit_log": str(self.shields.audit.path)}

    # -- answers -------------------------------------------------------------------------
    @cached_property
    def client(self) -> StackClient:
        return StackClient(self.settings.stack_url, timeout=self.settings.request_timeout)

    @cached_property
    def model_queue(self) -> ModelQueue:
        return ModelQueue(self.settings.run_dir / "queue", self.settings.answer_slots, self.settings.queue_timeout)

    def _in_turn(self, deltas: Iterable[str], on_wait: WaitCallback | None, waited: list[float]) -> Iterator[str]:
        """`deltas`, drawn once the model server has a free slot; the wait goes into `waited`."""
        with self.model_queue.turn(on_wait) as seconds:
            waited.append(seconds)
            yield from deltas

    def stream(
        self, question: str, collection: str | None = None, model: str | None = None, k: int | None = None,
        mode: Mode | None = None, filters: Filters | None = None, image: Path | str | None = None,
        on_wait: WaitCallback | None = None,
    ) -> AnswerStream:
        """The answer as it is written; iterate it for text, then read `.answer`.

        `model` names the model to try first (else the router picks); `image` is a picture sent
        with the question, which only vision models take. With shields on, the question is checked
        first (a blocked question never reaches the stack), flagged chunks are dropped or quoted,
        and the answer is redacted sentence by sentence. While the model server is busy with other
        questions, the question waits its turn and `on_wait` hears how it is doing."""
        started = time.perf_counter()
        safety = SafetyReport()
        guard = self.guard(collection)
        if guard is not None:
            verdict = guard.check_input(question)
            safety.record(verdict)
            if verdict.blocked:
                return self._refused(verdict, safety, model or self.settings.model_id, started)
        picture = image_data_url(Path(image)) if image is not None else None
        hits = self.search(question, collection, k or self.settings.ask_k, mode, filters)
        # Nothing close enough to the question: abstain without asking the model to guess.
        evidence = [h for h in hits if h.score >= self.settings.min_score]
        quoted: set[int] = set()
        output = None
        if guard is not None:
            screened = guard.screen(evidence, self.store(collection).safety([h.chunk_id for h in evidence]))
            evidence, quoted = screened.hits, screened.quoted
            safety.dropped_chunks = len(screened.dropped)
            safety.redactions += len(screened.stripped)  # passages packed without their flagged sentences
            output = guard.output(evidence, screened.tokens) if evidence else None
        route = self.router().run(question, evidence, requested=model or self.settings.model, image=picture,
                                  quoted=quoted)
        answering = Fallback(route, lambda choice: self.client.chat_stream(
            choice.spec.stack_id, choice.prompt.messages, self.settings.max_answer_tokens,
            self.settings.temperature, timeout=self.settings.model_timeout))
        waited: list[float] = []

        def finish(text: str, first_token: float | None) -> Answer:
            choice = answering.choice or route.choices[0]
            text = text.strip()
            if output is not None:
                safety.redactions += output.report.redactions
                if output.report.blocked:
                    safety.blocked, safety.stage = True, output.report.stage
                    safety.category, safety.shield = output.report.category, output.report.shield
            abstained = not evidence or is_abstention(text)
            citations: list = []
            if not abstained and not safety.blocked:
                vectors = self.store(collection).vectors([h.chunk_id for h in choice.prompt.hits])
                text, citations = cite(text, choice.prompt.hits, self.embedder.embed, vectors)
                if output is not None:  # a citation quotes its passage: the same redactions apply
                    citations = [dataclasses.replace(c, text=output.scrub(c.text)) for c in citations]
            return Answer(
                answer=text if evidence else ABSTAIN_TEXT,
                citations=citations,
                model=choice.spec.stack_id,
                abstained=abstained,
                seconds=round(time.perf_counter() - started, 3),
                first_token_seconds=None if first_token is None else round(first_token, 3),
                prompt_tokens=choice.prompt.tokens,
                context=choice.prompt.hits,
                notices=route.notices,
                safety=safety,
                wait_seconds=round(waited[0], 3) if waited else 0.0,
            )

        if not evidence:
            return AnswerStream(iter([ABSTAIN_TEXT]), finish)
        deltas = self._in_turn(answering, on_wait, waited)
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
            mode: Mode | None = None, filters: Filters | None = None, image: Path | str | None = None,
            on_wait: WaitCallback | None = None) -> Answer:
        return self.stream(question, collection, model, k, mode, filters, image, on_wait).result()

    # -- models --------------------------------------------------------------------------
    def router(self) -> Router:
        """A router over the profile's models that the stack serves now."""
        return Router(profiles.models(self.settings), self.client.models(),
                      lambda spec: profiles.token_counter(self.settings, spec), self.settings.max_answer_tokens)

    def models(self) -> list[ModelStatus]:
        """Every catalogue model of the profile, and whether it can answer now (or why not)."""
        specs = profiles.models(self.settings, role=None)
        try:
            registered, stack_error = set(self.client.models()), None
        except DocstackError:
            registered, stack_error = set(), "the stack is not running (`docstack up`)"
        try:
            served, server_error = {m.id for m in profiles.served(self.settings)}, None
        except DocstackError as exc:
            served, server_error = set(), str(exc)
        statuses = []
        for spec in specs:
            if server_error:
                reason = server_error
            elif spec.id not in served:
                reason = "not on the model server" + _pull_hint(self.settings)
            elif stack_error:
                reason = stack_error
            elif spec.stack_id not in registered:
                reason = "on the model server but not registered in the running stack (restart it: `docstack up`)"
            else:
                reason = "ready"
            statuses.append(ModelStatus(spec, reason == "ready", reason))
        return statuses

    def pull_models(self, on_progress: Callable[[PullProgress], None]) -> list[str]:
        """Fetch what the profile's models need: Ollama pulls, or the embedded GGUF assembled."""
        if self.settings.profile == "embedded":
            return [str(profiles.model_file(self.settings))]
        server = profiles.backend(self.settings)
        if not isinstance(server, OllamaBackend):
            raise DocstackError(f"the {self.settings.profile} profile's server manages its own models; nothing to pull")
        specs = profiles.models(self.settings, role=None)
        for spec in specs:
            server.pull(spec, on_progress)
        return [spec.provider_model_id for spec in specs]

    def rewrite(self, question: str, history: Sequence[Turn], model: str | None = None,
                on_wait: WaitCallback | None = None) -> str:
        """A follow-up as a question that stands on its own (one model call; none without history)."""
        if not history:
            return question
        # The model that would answer writes the question (the router's first choice).
        stack_id = self.router().pick(model or self.settings.model).stack_id
        rewriter = QuestionRewriter(lambda messages, tokens: self._in_turn(self.client.chat_stream(
            stack_id, messages, tokens, 0.0, timeout=self.settings.model_timeout), on_wait, []))
        return rewriter.run(question, history)

    def warm_up(self) -> None:
        """Load what a first answer needs (query embedder, safety shields, the model's tokenizer,
        the stack client) now, so the first question does not wait for it; the web app does this
        at start. Raises DocstackError when no stack answers."""
        self.embedder.embed(["warm up"])
        if self.shields is not None:
            self.shields.warm()  # prompt-guardrail's scikit-learn alone takes ~3 s to import
        # The router asks the stack what it serves (DocstackError when nothing answers: then
        # there is nothing to warm, and no model file is assembled for nothing) and loads the
        # served models' tokenizers.
        self.router().run("warm up", [])

    @cached_property
    def previews(self) -> PagePreviews:
        return PagePreviews(self.settings.home / "previews", self.settings.preview_dpi)

    def evidence(self, answer: Answer, collection: str | None = None) -> list[Evidence]:
        """What to show for each citation: the passage, its best sentence, the page's picture."""
        files = self.store(collection).paths([c.chunk_id for c in answer.citations])
        return evidence(answer, self.embedder.embed, self.previews, files)

    # -- services ------------------------------------------------------------------------
    @cached_property
    def services(self) -> ServiceManager:
        return ServiceManager(self.settings.run_dir, self.settings.log_dir, self.settings.startup_timeout)

    def up(self, with_ui: bool = True, only: Iterable[str] | None = None) -> list[ServiceState]:
        """Start the profile's services (or `only` these), each once it answers its health check."""
        started = []
        wanted = set(only or ())
        # A UI-only start (compose runs the stack in its own container) has no model server to check.
        resolve = not wanted or bool(wanted & {"model", "stack"})
        for service in profiles.services(self.settings, with_ui=with_ui or "ui" in wanted, resolve=resolve):
            if wanted and service.name not in wanted:
                continue
            self.services.start(service)
            started.append(self.services.state(service))
        (self.settings.run_dir / "profile").write_text(self.settings.profile)
        return started

    def down(self) -> list[str]:
        return [name for name in ("ui", "stack", "model") if self.services.stop(name)]

    def status(self) -> dict:
        marker = self.settings.run_dir / "profile"
        profile = marker.read_text().strip() if marker.is_file() else self.settings.profile
        running = self.settings.model_copy(update={"profile": profile})
        services = profiles.services(running, with_ui=True, resolve=False)
        states = {s.name: self.services.state(s) for s in services}
        return {
            "profile": profile,
            "home": str(self.settings.home),
            "default_model": self.settings.model_id,
            "safety": self.safety_status(),
            **{name: state.to_json() for name, state in states.items()},
            "collections": self.collections(),
        }
