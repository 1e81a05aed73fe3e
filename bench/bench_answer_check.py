"""Can the answering model judge for itself whether the passages answer a question? Side by side
on the same seeded questions, through the running stack (`docstack up` first):

- `answer`: docstack's prompt, as `docstack ask` sends it;
- `check`: first a yes/no question to the model over the same passages ("Do the excerpts above
  state the answer to this exact question?"); "no" abstains, "yes" goes on to the answer.

    .venv/bin/python bench/bench_answer_check.py [--dataset ../shared/data/squad-dev] [--limit 80] [--seed 7]

Prints, per variant, the answer accuracy, abstention recall on unanswerable questions, the share
of answerable questions wrongly abstained and the median seconds. The check shares the prompt's
system message, so llama.cpp's prefix cache makes it cost about one short prompt."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from docstack import Answer, DocStack
from docstack.eval import answers, harness
from docstack.rag.pipeline import Question
from docstack.rag.prompt import ABSTAIN_TEXT, is_abstention

ROOT = Path(__file__).resolve().parent.parent
CHECK = "{q}\n\nDo the excerpts above state the answer to this exact question? Reply with one word: yes or no."


def ask(ds: DocStack, collection: str, question: str, check: bool) -> Answer:
    started = time.perf_counter()
    text = answer_text(ds, collection, question, check)
    return Answer(text, [], "", is_abstention(text), time.perf_counter() - started)


def answer_text(ds: DocStack, collection: str, question: str, check: bool) -> str:
    """The answer pipeline's own stages, with the yes/no check between packing and generating."""
    pipeline = ds.pipeline(collection)
    asked = Question(question, k=ds.settings.ask_k)
    retrieved = pipeline.retrieve.run(asked)
    if not retrieved.hits:
        return ABSTAIN_TEXT
    screened = pipeline.screen_context.run(retrieved)
    choice = pipeline.pack.run(asked, screened).choices[0]
    system = choice.prompt.messages[0]

    def say(messages: list[dict], tokens: int) -> str:
        return "".join(pipeline.generate.once(choice.spec, messages, tokens))

    if check and say([system, {"role": "user", "content": CHECK.format(q=question)}], 2).strip().lower().startswith("no"):
        return ABSTAIN_TEXT
    return say(choice.prompt.messages, ds.settings.max_answer_tokens)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "squad-dev")
    parser.add_argument("--limit", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)  # not the seed `eval answers` reports on
    args = parser.parse_args()
    ds = DocStack()
    dataset, collection = harness.prepare(ds, args.dataset)
    questions = dataset.sample(args.limit, seed=args.seed)
    for variant in ("answer", "check"):
        result = answers.evaluate(lambda text: ask(ds, collection, text, check=variant == "check"), questions)
        print(json.dumps({"variant": variant, **{key: result[key] for key in (
            "questions", "accuracy", "abstention_recall", "false_abstentions", "median_seconds")}}), flush=True)


if __name__ == "__main__":
    main()
