from __future__ import annotations

import json

import pytest

from docstack.eval import harness
from docstack.eval.answers import citation_figures, evaluate, f1, is_correct, is_correct_normalised, rescored
from docstack.eval.datasets import Question, load
from docstack.rag.answer import Answer, Citation
from docstack.eval.retrieval import metrics, ranked_gains
from tests.conftest import ROOT, run_cli


def test_metrics_on_a_hand_ranked_example():
    q1 = Question("1", "a", [], True, {"p1": 1.0})
    q2 = Question("2", "b", [], True, {"p2": 1.0})
    gains1 = ranked_gains(q1, [["p9"], ["p1"], ["p1"]])  # gold at rank 2, counted once
    gains2 = ranked_gains(q2, [["p8"]] * 10)              # never found
    assert gains1 == [0.0, 1.0, 0.0]
    m = metrics([(q1, gains1), (q2, gains2)])
    assert m["hit@1"] == 0.0 and m["hit@5"] == 0.5 and m["mrr"] == pytest.approx(0.25)
    assert m["ndcg@10"] == pytest.approx(0.5 * (1 / 1.5849625), rel=1e-4)


def test_answer_matching_ignores_case_and_spacing():
    assert is_correct("It was  the 10th\ncentury [1].", ["10th century"])
    assert not is_correct("The documents do not contain the answer.", ["Rollo"])


@pytest.fixture
def squad_like(tmp_path):
    root = tmp_path / "mini"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "Pumps.md").write_text(
        "# Pumps\n\nThe Zephyr pump is serviced every 42 days by the plant crew.\n\n"
        "The Boreas valve opens when the pressure passes nine bar.\n")
    (root / "docs" / "Food.md").write_text("# Food\n\nThe canteen serves lentil soup on Fridays.\n")
    questions = [
        {"id": "a", "question": "How often is the Zephyr pump serviced?", "answers": ["42 days"],
         "answerable": True, "source": "Pumps.md", "paragraph": 0},
        {"id": "b", "question": "When does the Boreas valve open?", "answers": ["nine bar"],
         "answerable": True, "source": "Pumps.md", "paragraph": 1},
        {"id": "c", "question": "Who cooks the soup?", "answers": [], "answerable": False,
         "source": "Food.md", "paragraph": 0},
    ]
    (root / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in questions) + "\n")
    return root


def test_normalised_scoring_is_squads_with_number_words():
    assert not is_correct("There were eight of them.", ["8"])  # the strict figure stays strict
    assert is_correct_normalised("There were eight of them [1].", ["8"])
    assert is_correct_normalised("In the 10th century.", ["the 10th century"])
    assert not is_correct_normalised("It was 18 days.", ["8"])  # whole tokens, not substrings
    # Code answers: backticks and brackets are punctuation too (string.punctuation, as SQuAD's script).
    assert is_correct_normalised("The subclass is `defaultdict` [1].", ["defaultdict"])
    assert is_correct_normalised("Use `add_subparsers()`.", ["add_subparsers"])
    assert f1("the Normans, in France [1]", ["Normans"]) == 2 * (1 / 3) * 1 / (1 / 3 + 1)
    assert f1("nothing alike", ["Rollo"]) == 0.0


def test_citation_coverage_and_precision_look_inside_the_cited_passage():
    q = Question("q1", "When was it released?", ["September 25, 2024"], answerable=True)
    right = Citation(1, 1, "a.md", None, "It was released on September 25, 2024.")
    wrong = Citation(2, 2, "b.md", None, "The 1B model scores 49.3%.")
    cited = Answer("September 25, 2024 [1] [2].", [right, wrong], "m", False, 1.0)
    bare = Answer("September 25, 2024.", [], "m", False, 1.0, unsupported=["September 25, 2024."])
    figures = citation_figures([(q, cited), (q, bare)])
    assert figures == {"citation_coverage": 0.5, "citation_precision": 0.5, "uncited_answers": 0.5,
                       "answers_with_unsupported_sentences": 0.5}
    result = evaluate(lambda text: cited, [q])
    assert (result["accuracy"], result["accuracy_normalised"], result["citation_coverage"]) == (1.0, 1.0, 1.0)
    assert "per_question" not in result
    [row] = evaluate(lambda text: cited, [q], details=True)["per_question"]
    assert (row["id"], row["correct"], row["abstained"]) == ("q1", True, False)
    assert [c["holds_answer"] for c in row["citations"]] == [True, False]


def test_saved_answers_are_scored_again_to_the_same_figures(tmp_path):
    right = Question("q1", "When was it released?", ["September 25, 2024"], answerable=True)
    none = Question("q2", "Who won?", [], answerable=False)
    cited = [Citation(1, 1, "a.md", 2, "Released September 25, 2024.")]
    answers = {right.text: Answer("On `September 25, 2024` [1].", cited, "m", False, 1.5),
               none.text: Answer("The documents do not contain the answer.", [], "m", True, 0.5)}
    full = evaluate(lambda text: answers[text], [right, none], details=True)
    details = tmp_path / "details.jsonl"
    details.write_text("".join(json.dumps(row) + "\n" for row in full.pop("per_question")))
    assert rescored([json.loads(line) for line in details.read_text().splitlines()]) == full
    done = run_cli(["eval", "rescore", str(details), "--json"], tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout) == full
    missing = run_cli(["eval", "rescore", str(tmp_path / "missing.jsonl")], tmp_path)
    assert missing.returncode != 0 and "missing.jsonl" in missing.stderr


def test_a_dataset_question_without_a_gold_paragraph_counts_for_answers_only(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.html").write_text("<h1>json</h1><p>Use sort_keys to sort keys.</p>")
    rows = [{"id": "a", "question": "Which argument sorts keys?", "answers": ["sort_keys"], "answerable": True,
             "source": "page.html"}, {"id": "u", "question": "Which port?", "answers": [], "answerable": False}]
    (tmp_path / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    dataset = load(tmp_path, tmp_path / "cache")
    assert [(q.id, q.answerable, q.gold) for q in dataset.questions] == [("a", True, {}), ("u", False, {})]


def test_the_python_docs_corpus_loads_and_every_accepted_answer_is_in_its_page():
    dataset = load(ROOT / "bench" / "data" / "python-docs", ROOT / "build" / "unused")
    assert (sum(q.answerable for q in dataset.questions), sum(not q.answerable for q in dataset.questions)) == (42, 23)
    lines = [json.loads(line) for line in (dataset.docs.parent / "questions.jsonl").read_text().splitlines()]
    for row in lines:
        if row["answerable"]:
            page = (dataset.docs / row["source"]).read_text(encoding="utf-8")
            assert any(a.replace("`", "").split("(")[0].strip() in page for a in row["answers"]), row["id"]


def test_retrieval_harness_on_a_small_dataset(docstack, squad_like):
    result = harness.retrieval(docstack, squad_like, ["keyword", "dense", "hybrid"])
    assert result["questions"] == 2  # the unanswerable one has no gold paragraph
    for mode, row in result["results"].items():
        assert row["hit@1"] == 1.0 and row["ndcg@10"] == 1.0, mode


def test_beir_layout_is_read(tmp_path, docstack):
    root = tmp_path / "scifact-mini"
    (root / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attacks."},
              {"_id": "d2", "title": "Coffee", "text": "Coffee contains caffeine, a stimulant."}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "does aspirin prevent heart attacks"}))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    dataset = load(root, tmp_path / "cache")
    assert [q.gold for q in dataset.questions] == [{"d1": 1.0}]
    result = harness.retrieval(docstack, root, ["hybrid"])
    assert result["results"]["hybrid"]["hit@1"] == 1.0


@pytest.mark.stack
def test_answer_harness_names_the_model_that_answered(running_stack, squad_like):
    # Asked for by its catalogue id; reported as the stack served it (what the router chose).
    result = harness.answers(running_stack, squad_like, model="qwen2.5-0.5b-instruct", limit=1)
    assert result["questions"] == 1 and not result["errors"]
    assert result["model"] == "llamacpp/qwen2.5-0.5b-instruct"
