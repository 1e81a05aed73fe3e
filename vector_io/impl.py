"""The vector_io API over docstack's collections: search, stores and their files, read-only.

Every call runs as the stack's signed-in user (`get_authenticated_user()`, its principal and the
`teams` and `roles` attributes the run config's claims_mapping fills), made a docstack Principal;
a collection whose grant does not let them read it answers exactly as a store that does not exist.
Writes are refused: docstack chunks, embeds and screens documents itself (`docstack ingest`), and
chunks inserted through the stack would carry no file, page or section."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from docstack.vector_io.config import DocstackVectorIOConfig
from llama_stack.core.datatypes import AuthenticationRequiredError
from llama_stack.core.request_headers import get_authenticated_user
from llama_stack_api import (
    InsertChunksRequest,
    OpenAIAttachFileRequest,
    OpenAICreateVectorStoreFileBatchRequestWithExtraBody,
    OpenAICreateVectorStoreRequestWithExtraBody,
    OpenAISearchVectorStoreRequest,
    OpenAIUpdateVectorStoreFileRequest,
    OpenAIUpdateVectorStoreRequest,
    QueryChunksRequest,
    QueryChunksResponse,
    VectorIO,
    VectorStore,
    VectorStoreChunkingStrategyStatic,
    VectorStoreChunkingStrategyStaticConfig,
    VectorStoreContent,
    VectorStoreDeleteResponse,
    VectorStoreFileBatchObject,
    VectorStoreFileContentResponse,
    VectorStoreFileCounts,
    VectorStoreFileDeleteResponse,
    VectorStoreFileObject,
    VectorStoreFilesListInBatchResponse,
    VectorStoreFileStatus,
    VectorStoreListFilesResponse,
    VectorStoreListResponse,
    VectorStoreObject,
    VectorStoreSearchResponse,
    VectorStoreSearchResponsePage,
    VectorStoresProtocolPrivate,
)

from docstack import LOCAL, DocStack, DocstackError, DocumentInfo, Filters, Hit, Principal, Settings

log = logging.getLogger(__name__)

TEAMS, ROLES = "teams", "roles"  # the user attributes the run config's claims_mapping fills
MAX_RESULTS = 50  # OpenAI's own limit on max_num_results
MODES = {"vector": "dense", "keyword": "keyword", "hybrid": "hybrid"}
READ_ONLY = ("docstack's vector stores are read-only through the stack: add documents with `docstack ingest "
             "PATH --collection NAME` or the web app's Documents page; a new collection becomes a store within "
             "{seconds:g} s")
FILTERS = "docstack's vector stores filter on file (eq) and page (eq, gt, gte, lt, lte), alone or joined by 'and'"


def not_found(vector_store_id: str) -> ValueError:
    """What the stack's routing table says of a store it does not have (HTTP 400), word for word:
    a store the user may not read must not answer differently."""
    return ValueError(f"Vector_store '{vector_store_id}' not found")


def principal_of(user: Any | None, require_user: bool) -> Principal:
    """The docstack Principal of the stack's authenticated user (None: a stack without auth)."""
    if user is None:
        if require_user:
            raise AuthenticationRequiredError("sign in: docstack's vector stores need the stack's server.auth "
                                              "(see stack/distributions/onprem/run.yaml)")
        return LOCAL
    attributes = user.attributes or {}
    return Principal(user.principal, frozenset(attributes.get(TEAMS) or ()), frozenset(attributes.get(ROLES) or ()),
                     name=user.principal)


def file_id(collection: str, source: str) -> str:
    """A document's stable id, in the `file-...` form the Responses API cites (`<|file-...|>`)."""
    return "file-" + hashlib.sha256(f"{collection}\0{source}".encode()).hexdigest()[:24]


def attributes(collection: str, hit: Hit, quoted: bool = False) -> dict[str, str | float | bool]:
    found = {"file": Path(hit.source).name, "page": hit.page, "page_label": hit.page_label, "section": hit.section,
             "chunk_id": str(hit.chunk_id), "collection": collection, "quoted": quoted or None}
    return {key: value for key, value in found.items() if value is not None}


def search_filters(spec: dict | None) -> Filters | None:
    """OpenAI's attribute filters, as far as docstack's Filters go (a file, a page range)."""
    if not spec:
        return None
    parts = (spec.get("filters") or []) if spec.get("type") == "and" else [spec]
    source, first, last = None, 1, 2**31 - 1
    for part in parts:
        key, kind, value = part.get("key"), part.get("type"), part.get("value")
        if key in ("file", "filename") and kind == "eq" and isinstance(value, str):
            source = value
        elif key == "page" and isinstance(value, int | float) and not isinstance(value, bool):
            page = int(value)
            bounds = {"eq": (page, page), "gte": (page, last), "gt": (page + 1, last), "lte": (first, page),
                      "lt": (first, page - 1)}.get(kind)
            if bounds is None:
                raise ValueError(FILTERS)
            first, last = max(first, bounds[0]), min(last, bounds[1])
        else:
            raise ValueError(FILTERS)
    return Filters(source=source, pages=(first, last) if (first, last) != (1, 2**31 - 1) else None)


def search_mode(request: OpenAISearchVectorStoreRequest) -> str | None:
    """docstack's mode for the request; None (docstack's default, hybrid) unless one was asked for,
    since the request's own default is 'vector'."""
    if "search_mode" not in request.model_fields_set or request.search_mode is None:
        return None
    if request.search_mode not in MODES:
        raise ValueError(f"search_mode '{request.search_mode}' is not one of {', '.join(MODES)}")
    return MODES[request.search_mode]


class DocstackVectorIOImpl(VectorIO, VectorStoresProtocolPrivate):
    def __init__(self, config: DocstackVectorIOConfig):
        self.config = config
        self.docstack: DocStack | None = None
        self._table: Any = None
        self._following: asyncio.Task | None = None

    async def initialize(self) -> None:
        # docstack as the operator (LOCAL): it lists collections to sync them; each request runs as its user.
        self.docstack = DocStack(Settings(home=Path(self.config.home).expanduser()), principal=LOCAL)

    async def shutdown(self) -> None:
        if self._following is not None:
            self._following.cancel()

    # -- collections as registered stores ----------------------------------------------------
    # The stack's routing table serves only stores in its registry, and a run config lists only
    # those known when it was written. So each collection is registered here as a store (id and
    # name: the collection's name) and a store whose collection is gone is dropped: once when the
    # stack starts, and every `sync_seconds` after. Llama Stack 0.7.3 gives a vector_io provider
    # no hook for this: the table sets itself on the provider as `vector_store_store` and the stack
    # calls the table's `refresh()` after registering the run config's resources (the embedding
    # model the stores name) in a start-up event loop that is then closed, and again from the
    # server's own loop when it starts serving. Providers' own tasks made at `initialize` die with
    # that first loop.
    @property
    def vector_store_store(self) -> Any:
        return self._table

    @vector_store_store.setter
    def vector_store_store(self, table: Any) -> None:
        self._table = table
        refresh = table.refresh

        async def refresh_and_sync() -> None:
            await refresh()
            await self._sync_logged()
            self._follow()

        table.refresh = refresh_and_sync

    def _follow(self) -> None:
        """Keep syncing from the event loop that is running now (the server's, once it serves)."""
        loop = asyncio.get_running_loop()
        if self._following is not None and not self._following.done() and self._following.get_loop() is loop:
            return

        async def follow() -> None:
            while True:
                await asyncio.sleep(self.config.sync_seconds)
                await self._sync_logged()

        # A fresh context: stores registered here belong to no signed-in user.
        self._following = loop.create_task(follow(), context=contextvars.Context())

    async def _sync_logged(self) -> None:
        try:
            await self.sync()
        except Exception as exc:  # an index that cannot be reached now is tried again later
            log.warning("docstack collections not synced as vector stores: %s", exc)

    async def sync(self) -> None:
        table = self._table
        names = set(await asyncio.to_thread(self.docstack.library.backend.names))
        stores = {s.identifier for s in await table.get_all_with_type("vector_store")
                  if s.provider_id == self.__provider_id__}
        for name in sorted(names - stores):
            await table.register_vector_store(
                vector_store_id=name, embedding_model=self.config.embedding_model,
                embedding_dimension=self.config.embedding_dimension, provider_id=self.__provider_id__,
                provider_vector_store_id=name, vector_store_name=name)
            log.info("collection '%s' is served as a vector store", name)
        for name in sorted(stores - names):
            await table.unregister_vector_store(name)
            log.info("collection '%s' is gone; its vector store too", name)

    async def register_vector_store(self, vector_store: VectorStore) -> None:
        name = vector_store.provider_resource_id or vector_store.identifier
        if vector_store.identifier != name or not await asyncio.to_thread(self.docstack.library.backend.exists, name):
            raise ValueError(READ_ONLY.format(seconds=self.config.sync_seconds))

    async def unregister_vector_store(self, vector_store_id: str) -> None:
        pass  # the collection stays; only the stack forgets the store

    async def _ensure_openai_metadata_exists(self, vector_store: VectorStore) -> None:
        """The routing table calls this after registering a store; docstack's collections carry
        their own metadata (without it the table logs that the store may not work with the
        OpenAI-compatible API)."""

    # -- reading, as the signed-in user ------------------------------------------------------
    def _principal(self) -> Principal:
        return principal_of(get_authenticated_user(), self.config.require_user)

    async def _run(self, function, *args):
        """docstack's work off the server's event loop, as the request's user: `function` gets
        docstack as that user (the library applies each collection's grant) and `args`."""
        view = self.docstack.as_user(self._principal())
        try:
            return await asyncio.to_thread(function, view, *args)
        except DocstackError as exc:  # one line naming the fix, as a bad request
            raise ValueError(str(exc)) from exc

    @staticmethod
    def _readable(ds: DocStack, vector_store_id: str) -> str:
        """The collection behind the store, if this user may read it; else not found."""
        try:
            ds.library.index(vector_store_id)
        except DocstackError:
            raise not_found(vector_store_id) from None
        return vector_store_id

    def _store(self, ds: DocStack, vector_store_id: str) -> VectorStoreObject:
        name = self._readable(ds, vector_store_id)
        documents = ds.documents(name)
        created = min((d.ingested_at for d in documents), default=datetime.fromtimestamp(0))
        return VectorStoreObject(
            id=name, name=name, created_at=int(created.timestamp()), usage_bytes=ds.index_bytes(name),
            file_counts=VectorStoreFileCounts(completed=len(documents), cancelled=0, failed=0, in_progress=0,
                                              total=len(documents)),
            status="completed", metadata={"provider": "docstack", "collection": name})

    def _stores(self, ds: DocStack) -> list[VectorStoreObject]:
        return [self._store(ds, name) for name in ds.collections()]

    def _search(self, ds: DocStack, vector_store_id: str,
                request: OpenAISearchVectorStoreRequest) -> VectorStoreSearchResponsePage:
        name = self._readable(ds, vector_store_id)
        query = " ".join(request.query) if isinstance(request.query, list) else request.query
        k = min(request.max_num_results or 10, MAX_RESULTS)
        retrieved = ds.library.retrieve(query, name, k, search_mode(request), search_filters(request.filters))
        # The context shield's stored verdicts, as for docstack's own answers: these passages go
        # into some model's prompt (file_search puts them in the stack's), so planted instructions
        # are stripped or the passage dropped, and a passage to be read only as a quote says so.
        screened = ds.guard(name).screen(retrieved.hits, retrieved.verdicts())
        threshold = request.ranking_options.score_threshold if request.ranking_options else None
        hits = [h for h in screened.hits if not threshold or h.score >= threshold]
        return VectorStoreSearchResponsePage(search_query=[query], data=[
            VectorStoreSearchResponse(file_id=file_id(name, h.source), filename=Path(h.source).name, score=h.score,
                                      attributes=attributes(name, h, quoted=h.chunk_id in screened.quoted),
                                      content=[VectorStoreContent(type="text", text=h.text)])
            for h in hits])

    def _file(self, name: str, document: DocumentInfo) -> VectorStoreFileObject:
        settings = self.docstack.settings
        return VectorStoreFileObject(
            id=file_id(name, document.source), vector_store_id=name, status="completed",
            created_at=int(document.ingested_at.timestamp()), usage_bytes=document.bytes,
            attributes={"file": document.name, "pages": document.pages, "chunks": document.chunks},
            chunking_strategy=VectorStoreChunkingStrategyStatic(static=VectorStoreChunkingStrategyStaticConfig(
                max_chunk_size_tokens=settings.chunk_tokens, chunk_overlap_tokens=settings.chunk_overlap)))

    def _files(self, ds: DocStack, vector_store_id: str) -> list[VectorStoreFileObject]:
        name = self._readable(ds, vector_store_id)
        return [self._file(name, d) for d in ds.documents(name)]

    def _document(self, ds: DocStack, vector_store_id: str, wanted: str) -> DocumentInfo:
        name = self._readable(ds, vector_store_id)
        for document in ds.documents(name):
            if file_id(name, document.source) == wanted:
                return document
        raise ValueError(f"File '{wanted}' not found in vector store '{vector_store_id}'")

    def _contents(self, ds: DocStack, vector_store_id: str, wanted: str) -> VectorStoreFileContentResponse:
        document = self._document(ds, vector_store_id, wanted)
        chunks = ds.library.index(vector_store_id).chunks(document.path)
        return VectorStoreFileContentResponse(data=[
            VectorStoreContent(type="text", text=c.text, metadata={"page": c.page, "section": c.section})
            for c in chunks])

    # -- the vector_io API -------------------------------------------------------------------
    async def openai_search_vector_store(self, vector_store_id: str,
                                         request: OpenAISearchVectorStoreRequest) -> VectorStoreSearchResponsePage:
        return await self._run(self._search, vector_store_id, request)

    async def openai_retrieve_vector_store(self, vector_store_id: str) -> VectorStoreObject:
        return await self._run(self._store, vector_store_id)

    async def openai_list_vector_stores(self, limit: int | None = 20, order: str | None = "desc",
                                        after: str | None = None, before: str | None = None) -> VectorStoreListResponse:
        # The stack's router lists registered stores and retrieves each from here; this answers callers
        # of the provider itself.
        stores = (await self._run(self._stores))[: limit or 20]
        return VectorStoreListResponse(data=stores, first_id=stores[0].id if stores else None,
                                       last_id=stores[-1].id if stores else None)

    async def openai_list_files_in_vector_store(
        self, vector_store_id: str, limit: int | None = 20, order: str | None = "desc", after: str | None = None,
        before: str | None = None, filter: VectorStoreFileStatus | None = None,
    ) -> VectorStoreListFilesResponse:
        files = await self._run(self._files, vector_store_id)
        files.sort(key=lambda f: f.created_at, reverse=order != "asc")
        if after:
            files = files[next((i + 1 for i, f in enumerate(files) if f.id == after), 0):]
        if filter and filter != "completed":
            files = []
        page = files[: limit or 20]
        return VectorStoreListFilesResponse(data=page, first_id=page[0].id if page else None,
                                            last_id=page[-1].id if page else None, has_more=len(files) > len(page))

    async def openai_retrieve_vector_store_file(self, vector_store_id: str, file_id: str) -> VectorStoreFileObject:
        document = await self._run(self._document, vector_store_id, file_id)
        return self._file(vector_store_id, document)

    async def openai_retrieve_vector_store_file_contents(
        self, vector_store_id: str, file_id: str, include_embeddings: bool | None = False,
        include_metadata: bool | None = False,
    ) -> VectorStoreFileContentResponse:
        return await self._run(self._contents, vector_store_id, file_id)

    async def query_chunks(self, request: QueryChunksRequest) -> QueryChunksResponse:
        raise NotImplementedError("docstack's vector stores answer vector_stores/{id}/search (and the Responses "
                                  "API's file_search), not the chunk-level query API")

    # -- writes: refused ---------------------------------------------------------------------
    async def _refuse(self, vector_store_id: str | None = None):
        if vector_store_id is not None:
            await self._run(self._readable, vector_store_id)  # a store this user cannot see stays unseen
        raise ValueError(READ_ONLY.format(seconds=self.config.sync_seconds))

    async def insert_chunks(self, request: InsertChunksRequest) -> None:
        await self._refuse(request.vector_store_id)

    async def openai_create_vector_store(self, params: OpenAICreateVectorStoreRequestWithExtraBody) -> VectorStoreObject:
        await self._refuse()

    async def openai_update_vector_store(self, vector_store_id: str,
                                         request: OpenAIUpdateVectorStoreRequest) -> VectorStoreObject:
        await self._refuse(vector_store_id)

    async def openai_delete_vector_store(self, vector_store_id: str) -> VectorStoreDeleteResponse:
        await self._refuse(vector_store_id)

    async def openai_attach_file_to_vector_store(self, vector_store_id: str,
                                                 request: OpenAIAttachFileRequest) -> VectorStoreFileObject:
        await self._refuse(vector_store_id)

    async def openai_update_vector_store_file(self, vector_store_id: str, file_id: str,
                                              request: OpenAIUpdateVectorStoreFileRequest) -> VectorStoreFileObject:
        await self._refuse(vector_store_id)

    async def openai_delete_vector_store_file(self, vector_store_id: str, file_id: str) -> VectorStoreFileDeleteResponse:
        await self._refuse(vector_store_id)

    async def openai_create_vector_store_file_batch(
        self, vector_store_id: str, params: OpenAICreateVectorStoreFileBatchRequestWithExtraBody,
    ) -> VectorStoreFileBatchObject:
        await self._refuse(vector_store_id)

    async def openai_retrieve_vector_store_file_batch(self, batch_id: str,
                                                      vector_store_id: str) -> VectorStoreFileBatchObject:
        await self._refuse(vector_store_id)

    async def openai_list_files_in_vector_store_file_batch(
        self, batch_id: str, vector_store_id: str, after: str | None = None, before: str | None = None,
        filter: str | None = None, limit: int | None = 20, order: str | None = "desc",
    ) -> VectorStoreFilesListInBatchResponse:
        await self._refuse(vector_store_id)

    async def openai_cancel_vector_store_file_batch(self, batch_id: str,
                                                    vector_store_id: str) -> VectorStoreFileBatchObject:
        await self._refuse(vector_store_id)
