"""Llama Stack's llama.cpp inference adapter, fitted to llama-cpp-python's server so that the
Responses API's tools work through it (module-based external provider; adapter.py).

llama-cpp-python's server (0.3.36) accepts a list of content parts only in user messages; Llama
Stack 0.7.3's Responses API sends the results of a `file_search` call as a tool message whose
content is a list of text parts, so the turn after every tool call failed with 500 ("Input should
be a valid string", `messages[2]`). And that server parses a tool call only when tool_choice names
the function; on the next turn ("auto") the model wrote another call as plain text, which became
the answer. Registered in stack/distributions/onprem/run.yaml as

    providers:
      inference:
      - provider_id: llamacpp
        provider_type: remote::docstack-llama-cpp
        module: docstack.stack.llama_cpp_provider
        config: {base_url: ...}
"""

from __future__ import annotations

from typing import Any

from llama_stack.providers.remote.inference.llama_cpp_server.config import LlamaCppServerConfig


async def get_adapter_impl(config: LlamaCppServerConfig, deps: dict[Any, Any]):
    from docstack.stack.llama_cpp_provider.adapter import TextMessagesLlamaCpp

    return TextMessagesLlamaCpp(config=config)
