"""docstack's collections through Llama Stack's OpenAI-compatible API: the on-prem run config
(stack/distributions/onprem) started for real against a real local OIDC provider, called with the
`openai` and `llama-stack-client` SDKs and a user's real ID token. Alice (team hr) lists, searches
and asks hr's collection; engineering's answers her as a store that does not exist."""

from __future__ import annotations

import base64
import json

import httpx
import openai
import pytest
from llama_stack_client import LlamaStackClient

from docstack import LOCAL, DocStack, Settings
from tests.conftest import SHARED_MODELS, free_port
from tests.pdfs import write_pdf

pytestmark = pytest.mark.stack

MODEL = "llamacpp/qwen2.5-0.5b-instruct"
LEAVE = "Annual leave: every employee receives 27 days of paid annual leave per calendar year."


@pytest.fixture(scope="module")
def onprem(tmp_path_factory, oidc, embedder):
    """hr-policies (team hr) and eng-runbooks (team engineering) behind the on-prem stack."""
    root = tmp_path_factory.mktemp("vector-io")
    (root / "hr").mkdir()
    (root / "eng").mkdir()
    write_pdf(root / "hr" / "leave-policy.pdf", [
        "Welcome to the HR handbook. It covers employment at Acme.", LEAVE, "Parental leave is 16 weeks at full pay."])
    write_pdf(root / "eng" / "runbook.pdf", [
        "Database failover runbook.", "To fail over the primary database, run pgctl promote on the replica db-2."])
    settings = Settings(home=root / "home", models_dir=SHARED_MODELS, stack_port=free_port(), model_port=free_port(),
                        ui_port=free_port(), n_ctx=2048, oidc_issuer=oidc.issuer, oidc_jwks_url=oidc.jwks_url)
    ds = DocStack(settings, embedder=embedder, principal=LOCAL)  # the operator
    for collection, folder, team in (("hr-policies", "hr", "hr"), ("eng-runbooks", "eng", "engineering")):
        ds.ingest([root / folder], collection=collection)
        ds.grant(collection, read_teams=[team])
    ds.up(with_ui=False)
    yield ds
    ds.down()


@pytest.fixture(scope="module")
def tokens(oidc) -> dict[str, str]:
    return {user: oidc.token(user) for user in ("alice", "bob", "root")}


def sdk(onprem, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=onprem.settings.stack_url + "/v1", api_key=token, max_retries=0, timeout=600)


def test_the_on_prem_config_is_what_up_started(onprem):
    run = onprem.settings.run_dir / "run.yaml"
    assert "docstack.vector_io" in run.read_text() and "oauth2_token" in run.read_text()


def test_no_token_or_a_forged_one_is_refused(onprem, tokens):
    url = onprem.settings.stack_url
    assert httpx.get(f"{url}/v1/health").status_code == 200  # load balancers need no token
    assert httpx.get(f"{url}/v1/vector_stores").status_code == 401
    # Alice's token, her teams rewritten to engineering's: the provider's signature no longer holds.
    header, payload, signature = tokens["alice"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_payload = base64.urlsafe_b64encode(json.dumps({**claims, "groups": ["engineering"]}).encode()).rstrip(b"=")
    forged = f"{header}.{forged_payload.decode()}.{signature}"
    assert httpx.get(f"{url}/v1/vector_stores", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        sdk(onprem, forged).vector_stores.list()


def test_each_user_lists_the_stores_their_teams_may_read(onprem, tokens):
    assert [s.id for s in sdk(onprem, tokens["alice"]).vector_stores.list()] == ["hr-policies"]
    assert [s.id for s in sdk(onprem, tokens["bob"]).vector_stores.list()] == ["eng-runbooks"]
    assert sorted(s.id for s in sdk(onprem, tokens["root"]).vector_stores.list()) == ["eng-runbooks", "hr-policies"]
    store = sdk(onprem, tokens["alice"]).vector_stores.retrieve("hr-policies")
    assert store.name == "hr-policies" and store.file_counts.completed == 1


def test_search_answers_with_docstack_hits_and_their_file_and_page(onprem, tokens):
    page = sdk(onprem, tokens["alice"]).vector_stores.search("hr-policies", query="How many days of paid annual leave?")
    first = page.data[0]
    assert first.content[0].text == LEAVE
    assert first.filename == "leave-policy.pdf" and first.file_id.startswith("file-")
    assert first.attributes["file"] == "leave-policy.pdf" and first.attributes["page"] == 2
    assert first.attributes["collection"] == "hr-policies"
    # The same hits as docstack's own search, in its order.
    own = onprem.search("How many days of paid annual leave?", collection="hr-policies", k=10)
    assert [(d.attributes["page"], d.content[0].text) for d in page.data] == [(h.page, h.text) for h in own]
    only_page_3 = sdk(onprem, tokens["alice"]).vector_stores.search(
        "hr-policies", query="leave", filters={"type": "gte", "key": "page", "value": 3})
    assert [d.attributes["page"] for d in only_page_3.data] == [3]


def test_another_teams_store_answers_as_a_missing_one(onprem, tokens):
    alice = sdk(onprem, tokens["alice"])
    errors = {}
    for store in ("eng-runbooks", "no-such-store"):
        with pytest.raises(openai.BadRequestError) as refused:
            alice.vector_stores.search(store, query="How do I fail over the database?")
        errors[store] = (refused.value.status_code, refused.value.message.replace(store, "ID"))
        with pytest.raises(openai.BadRequestError):
            alice.vector_stores.retrieve(store)
        with pytest.raises(openai.BadRequestError):
            alice.vector_stores.files.list(store)
    assert errors["eng-runbooks"] == errors["no-such-store"]
    # Bob, of engineering, reads it.
    found = sdk(onprem, tokens["bob"]).vector_stores.search("eng-runbooks", query="How do I fail over the database?")
    assert any("pgctl promote" in d.content[0].text for d in found.data)


def test_writes_through_the_stack_are_refused(onprem, tokens):
    with pytest.raises(openai.BadRequestError, match="read-only through the stack"):
        sdk(onprem, tokens["root"]).vector_stores.create(name="new-collection")
    with pytest.raises(openai.BadRequestError, match="not found"):  # alice may not even learn it exists
        sdk(onprem, tokens["alice"]).vector_stores.delete("eng-runbooks")
    assert sorted(s.id for s in sdk(onprem, tokens["root"]).vector_stores.list()) == ["eng-runbooks", "hr-policies"]


def test_llama_stack_client_lists_and_searches_as_the_user(onprem, tokens):
    client = LlamaStackClient(base_url=onprem.settings.stack_url, api_key=tokens["alice"], max_retries=0)
    assert [s.id for s in client.vector_stores.list()] == ["hr-policies"]
    hits = client.vector_stores.search("hr-policies", query="parental leave")
    assert hits.data[0].content[0].text == "Parental leave is 16 weeks at full pay."
    assert hits.data[0].attributes["page"] == 3
    with pytest.raises(Exception, match="not found"):
        client.vector_stores.search("eng-runbooks", query="failover")
    files = client.vector_stores.files.list("hr-policies")
    assert [f.attributes["file"] for f in files] == ["leave-policy.pdf"]


def test_responses_file_search_answers_from_docstack_with_its_citations(onprem, tokens):
    """The Responses API's file_search through the real Qwen2.5-0.5B: the search call is forced
    (tool_choice), so llama.cpp writes its arguments under a grammar; the answer is the model's."""
    response = sdk(onprem, tokens["alice"]).responses.create(
        model=MODEL, input="How many days of paid annual leave does an employee get?", temperature=0,
        tools=[{"type": "file_search", "vector_store_ids": ["hr-policies"]}], tool_choice={"type": "file_search"},
        include=["file_search_call.results"])
    call = next(o for o in response.output if o.type == "file_search_call")
    assert call.status == "completed" and call.results[0].text == LEAVE
    assert call.results[0].attributes["page"] == 2 and call.results[0].attributes["file"] == "leave-policy.pdf"
    message = next(o for o in response.output if o.type == "message")
    assert "27" in response.output_text, response.output_text
    cited = {a.filename for part in message.content for a in part.annotations}
    assert cited <= {"leave-policy.pdf"}


def test_responses_file_search_on_another_teams_store_finds_nothing(onprem, tokens):
    response = sdk(onprem, tokens["alice"]).responses.create(
        model=MODEL, input="How do I fail over the primary database?", temperature=0, max_output_tokens=24,
        tools=[{"type": "file_search", "vector_store_ids": ["eng-runbooks"]}], tool_choice={"type": "file_search"},
        include=["file_search_call.results"])
    call = next(o for o in response.output if o.type == "file_search_call")
    assert not call.results
    assert "pgctl" not in response.output_text and "db-2" not in response.output_text
