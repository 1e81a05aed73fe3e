from __future__ import annotations


def get_provider_spec():
    from llama_stack_api import Api, InlineProviderSpec

    return InlineProviderSpec(
        api=Api.vector_io,
        provider_type="inline::docstack",
        pip_packages=[],
        module="docstack.vector_io",
        config_class="docstack.vector_io.config.DocstackVectorIOConfig",
        description="docstack's collections as vector stores: its hybrid search, page citations and "
                    "per-team grants, read-only.",
    )
