"""The vector_io provider's and the llama.cpp adapter's translations, without a server: the stack's
user as a docstack Principal, OpenAI's filters and search modes as docstack's, results' ids and
attributes, the on-prem run config's sign-in as `docstack up` writes it, and the messages
llama-cpp-python's server is sent."""

from __future__ import annotations

import pytest
import yaml
from docstack.stack import profiles
from docstack.stack.llama_cpp_provider.adapter import fitted
from docstack.vector_io.impl import attributes, file_id, not_found, principal_of, search_filters, search_mode
from llama_stack.core.datatypes import AuthenticationRequiredError, User
from llama_stack_api import OpenAIChatCompletionRequestWithExtraBody, OpenAISearchVectorStoreRequest

from docstack import LOCAL, Filters, Hit, Settings


def test_the_stacks_user_becomes_a_principal_with_teams_and_roles():
    alice = principal_of(User("alice", {"teams": ["hr"], "roles": ["member"]}), require_user=True)
    assert (alice.user, alice.teams, alice.roles, alice.is_admin) == ("alice", {"hr"}, {"member"}, False)
    assert principal_of(User("root", {"roles": ["admin"]}), require_user=True).is_admin
    assert principal_of(User("x", None), require_user=True).teams == frozenset()
    with pytest.raises(AuthenticationRequiredError):  # a stack without server.auth serves no one
        principal_of(None, require_user=True)
    assert principal_of(None, require_user=False) == LOCAL


def test_openai_filters_become_docstack_filters():
    assert search_filters(None) is None
    assert search_filters({"type": "eq", "key": "file", "value": "a.pdf"}) == Filters(source="a.pdf")
    assert search_filters({"type": "and", "filters": [{"type": "gte", "key": "page", "value": 3},
                                                      {"type": "lt", "key": "page", "value": 7}]}) == \
        Filters(pages=(3, 6))
    assert search_filters({"type": "eq", "key": "page", "value": 2.0}) == Filters(pages=(2, 2))
    for unsupported in ({"type": "ne", "key": "page", "value": 2}, {"type": "eq", "key": "owner", "value": "x"},
                        {"type": "or", "filters": []}):
        with pytest.raises(ValueError, match="filter on file"):
            search_filters(unsupported)


def test_the_requests_default_mode_is_docstacks_own():
    assert search_mode(OpenAISearchVectorStoreRequest(query="q")) is None  # the request's 'vector' is a default
    assert search_mode(OpenAISearchVectorStoreRequest(query="q", search_mode="vector")) == "dense"
    assert search_mode(OpenAISearchVectorStoreRequest(query="q", search_mode="keyword")) == "keyword"
    with pytest.raises(ValueError, match="search_mode 'fuzzy'"):
        search_mode(OpenAISearchVectorStoreRequest(query="q", search_mode="fuzzy"))


def test_results_name_their_file_page_and_section_and_cite_as_files():
    hit = Hit(7, "/srv/docs/hr/leave.pdf", 2, "Leave > Annual", 0.8, "text", page_label="ii")
    assert attributes("hr", hit) == {"file": "leave.pdf", "page": 2, "page_label": "ii", "section": "Leave > Annual",
                                     "chunk_id": "7", "collection": "hr"}
    assert "section" not in attributes("hr", Hit(1, "a.md", None, None, 0.5, "t"))
    assert file_id("hr", "a.pdf") == file_id("hr", "a.pdf") != file_id("eng", "a.pdf")
    assert file_id("hr", "a.pdf").startswith("file-")  # the form the Responses API's citations match
    assert str(not_found("eng")) == "Vector_store 'eng' not found"  # the routing table's words


def test_up_writes_the_on_prem_config_with_the_providers_keys_and_claims(tmp_path):
    settings = Settings(home=tmp_path, oidc_issuer="https://sso.example.com", oidc_jwks_url="https://sso.example.com/k",
                        oidc_teams_claim="grp", oidc_roles_claim="app_roles")
    assert profiles.distribution(settings).parent.name == "onprem"
    assert profiles.distribution(Settings(home=tmp_path)).parent.name == "embedded"
    config = yaml.safe_load(profiles.render_run_config(settings, profiles.models(settings)).read_text())
    auth = config["server"]["auth"]["provider_config"]
    assert auth["jwks"]["uri"] == "https://sso.example.com/k"
    assert auth["claims_mapping"] == {"grp": "teams", "app_roles": "roles"}
    models = {m["model_id"]: m.get("model_type") for m in config["registered_resources"]["models"]}
    assert models == {**{alias: "llm" for alias in profiles.embedded_aliases(settings)}, "all-MiniLM-L6-v2": "embedding"}
    assert next(iter(models)) == settings.model_alias  # the default first
    assert profiles.stack_env(settings)["DOCSTACK_STACK_STORE"].endswith("stack/onprem")


def test_llama_cpp_gets_text_and_answers_a_tools_results_as_plain_chat():
    call = {"id": "c1", "type": "function", "function": {"name": "file_search", "arguments": "{}"}}
    request = OpenAIChatCompletionRequestWithExtraBody(
        model="m", tools=[{"type": "function", "function": {"name": "file_search"}}], tool_choice="auto",
        messages=[{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                  {"role": "user", "content": "Leave?"},
                  {"role": "assistant", "content": None, "tool_calls": [call]},
                  {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "27 "},
                                                                     {"type": "text", "text": "days"}]}])
    sent = fitted(request)
    assert [(m.role, m.content) for m in sent.messages] == [
        ("system", "Be brief."), ("user", "Leave?"), ("user", "27 days")]
    assert sent.tools is None and sent.tool_choice is None
    forced = fitted(request.model_copy(update={"messages": request.messages[:2],
                                               "tool_choice": {"type": "function",
                                                               "function": {"name": "file_search"}}}))
    assert forced.tools and forced.tool_choice["function"]["name"] == "file_search"
