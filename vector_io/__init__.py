"""docstack's collections as a Llama Stack vector_io provider (module-based external provider), so
that other programs reach them through the stack's OpenAI-compatible API under its sign-in:
`vector_stores/{id}/search` and the Responses API's `file_search` answer with docstack's own
hybrid search, each result naming its file, page, printed page label and section.

Registered in stack/distributions/onprem/run.yaml as

    providers:
      vector_io:
      - provider_id: docstack
        provider_type: inline::docstack
        module: docstack.vector_io
        config: {home: ...}

Llama Stack imports `docstack.vector_io.provider.get_provider_spec()` for the spec and this
module's `get_provider_impl` for the implementation (impl.py)."""

from __future__ import annotations

from typing import Any

from docstack.vector_io.config import DocstackVectorIOConfig


async def get_provider_impl(config: DocstackVectorIOConfig, deps: dict[Any, Any]):
    from docstack.vector_io.impl import DocstackVectorIOImpl

    impl = DocstackVectorIOImpl(config)
    await impl.initialize()
    return impl
