from __future__ import annotations


def get_provider_spec():
    from llama_stack_api import Api, RemoteProviderSpec

    return RemoteProviderSpec(
        api=Api.inference,
        adapter_type="docstack-llama-cpp",
        provider_type="remote::docstack-llama-cpp",
        pip_packages=[],
        module="docstack.stack.llama_cpp_provider",
        config_class="llama_stack.providers.remote.inference.llama_cpp_server.config.LlamaCppServerConfig",
        description="llama.cpp server whose non-user messages are sent as plain text (tool results included).",
    )
