"""The grounding check on its own: which replies say something their passages hold."""

from __future__ import annotations

from docstack.rag.grounding import ground

PASSAGES = ["json.dumps(obj, *, sort_keys=False, indent=None): if sort_keys is true, the output of "
            "dictionaries is sorted by key.", "shutil.which(cmd) returns the path to an executable which "
            "would be run if the given cmd was called.", "Changed in version 3.8: on Windows the buffer is 1 MiB."]


def test_an_answer_with_words_from_the_passages_is_grounded():
    assert ground("Which argument of json.dumps sorts the keys?", "Pass `sort_keys=True` [1].", PASSAGES).grounded
    assert ground("How big is the buffer on Windows?", "1 MiB.", PASSAGES).grounded
    # "which" is a question word in the question, and a word like any other in the answer
    assert ground("Which shutil function finds an executable?", "shutil.which [2]", PASSAGES).grounded


def test_restating_the_question_or_answering_from_memory_is_not():
    echo = ground("Which json function encrypts its output?", "The json function encrypts its output [1].", PASSAGES)
    assert echo.echo and not echo.grounded
    memory = ground("What does the GIL stand for?", "The GIL stands for Global Interpreter Lock.", PASSAGES)
    assert memory.new_terms == {"stands", "global", "interpreter", "lock"} and memory.share == 0.0
    assert not memory.grounded
    # a number no passage holds, however close the prose
    assert not ground("How many columns may a table have?", "A table may have 2000 columns at most.", PASSAGES).grounded


def test_code_examples_are_not_claims():
    answer = "Pass `sort_keys=True` [1]:\n```python\nimport json\nprint(json.dumps(data, sort_keys=True))\n```"
    assert ground("Which argument of json.dumps sorts the keys?", answer, PASSAGES).grounded


def test_answers_words_cannot_judge_are_left_standing():
    french = ground("Quel argument trie les clés ?", "Il faut utiliser l'argument sort_keys pour trier les clés.", PASSAGES)
    assert not french.judged and french.grounded
    assert ground("哪个参数对键排序?", "使用 sort_keys 参数。", PASSAGES).grounded
