"""The llama.cpp adapter, fitted to what llama-cpp-python's server (0.3.36) takes and parses:
system, assistant and tool messages as one string, and the turn that reads a tool's results as
plain chat, without tools."""

from __future__ import annotations

from llama_stack.providers.remote.inference.llama_cpp_server.llama_cpp_server import LlamaCppServerInferenceAdapter
from llama_stack_api import OpenAIChatCompletionRequestWithExtraBody, OpenAIUserMessageParam

TEXT_ONLY = ("system", "assistant", "tool")  # the server types their content as a string


def as_text(message):
    if message.role not in TEXT_ONLY or not isinstance(message.content, list):
        return message
    if any(getattr(part, "type", None) != "text" for part in message.content):
        return message  # not text: the server's own error says so
    return message.model_copy(update={"content": "".join(part.text for part in message.content)})


def as_question(messages: list) -> list:
    """The turn that reads a tool's results, as plain chat: the call left out and its results
    given as the user's (Qwen's template wraps them in <tool_response> tags, which the 0.5B model
    copied into its answer)."""
    plain = []
    for message in messages:
        if message.role == "assistant" and getattr(message, "tool_calls", None) and not message.content:
            continue
        if message.role == "tool":
            message = OpenAIUserMessageParam(content=message.content)
        plain.append(message)
    return plain


def fitted(params: OpenAIChatCompletionRequestWithExtraBody) -> OpenAIChatCompletionRequestWithExtraBody:
    messages = [as_text(m) for m in params.messages]
    # The server parses a tool call only when tool_choice names the function (it then constrains the
    # output to the tool's arguments); offered tools under "auto", the model wrote another call as
    # plain text, which the Responses API returned as the answer. After a tool's results, answer.
    if messages and messages[-1].role == "tool" and not isinstance(params.tool_choice, dict):
        return params.model_copy(update={"messages": as_question(messages), "tools": None, "tool_choice": None,
                                         "parallel_tool_calls": None})
    return params.model_copy(update={"messages": messages})


class TextMessagesLlamaCpp(LlamaCppServerInferenceAdapter):
    async def openai_chat_completion(self, params: OpenAIChatCompletionRequestWithExtraBody):
        return await super().openai_chat_completion(fitted(params))
