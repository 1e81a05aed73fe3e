"""Can an embedded model's own probability of "yes" tell answerable questions from unanswerable
ones? For each question, the passages `docstack ask` would pack (same retrieval, same prompt
builder, same system message), then the yes/no question "Do the excerpts above state the answer to
this exact question?", and the model's probability of yes against no for its first reply token:
read from llama.cpp's logits of the last prompt position, so no `logits_all` (which keeps logits
for every prompt token: 2.4 GB at a 4,096-token window with Qwen's 152k-token vocabulary).

    .venv/bin/python bench/bench_answerability.py [--dataset ../shared/data/squad-dev] [--limit 160]
        [--seed 11] [--gguf PATH ...]

Runs in this process, no stack needed (the models are loaded with llama-cpp-python, two threads).
The questions are a seeded sample split in two halves: a threshold is chosen on the first (the one
that declines the most unanswerable questions while declining at most 10% of answerable ones) and
reported on the second. Prints per model: ROC AUC on each half, and at the chosen threshold the
share of unanswerable questions declined (abstention recall) and of answerable ones declined."""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from docstack import DocStack  # noqa: E402
from docstack.eval import harness  # noqa: E402
from docstack.rag.prompt import PromptBuilder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHECK = "{q}\n\nDo the excerpts above state the answer to this exact question? Reply with one word: yes or no."
MAX_FALSE = 0.1


class YesNo:
    """A GGUF model in this process that scores P(yes) for a chat whose reply is one word."""

    def __init__(self, path: Path, n_ctx: int):
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_threads=2, logits_all=False, verbose=False)
        vocab = lambda words: sorted({self.llm.tokenize(w.encode(), add_bos=False, special=False)[0]  # noqa: E731
                                      for w in words})
        self.yes, self.no = vocab(["yes", "Yes", " yes", " Yes"]), vocab(["no", "No", " no", " No"])

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def p_yes(self, messages: list[dict]) -> float:
        # ChatML, as Qwen's GGUF template renders it; the reply starts after the assistant header.
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        tokens = self.llm.tokenize((text + "<|im_start|>assistant\n").encode(), add_bos=False, special=True)
        self.llm.reset()
        self.llm.eval(tokens)
        pointer = self._llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)),
                                       shape=(self.llm.n_vocab(),)).astype(np.float64)
        yes, no = np.logaddexp.reduce(logits[self.yes]), np.logaddexp.reduce(logits[self.no])
        return float(1.0 / (1.0 + np.exp(no - yes)))


def auc(scores_pos: list[float], scores_neg: list[float]) -> float:
    """P(an answerable question scores above an unanswerable one); ties count half."""
    pairs = [(p > n) + 0.5 * (p == n) for p in scores_pos for n in scores_neg]
    return round(sum(pairs) / max(1, len(pairs)), 3)


def threshold(rows: list[dict]) -> float:
    """The highest P(yes) cut below which at most MAX_FALSE of answerable questions fall."""
    answerable = sorted(r["p_yes"] for r in rows if r["answerable"])
    allowed = int(MAX_FALSE * len(answerable))
    return answerable[allowed] if answerable else 0.5


def figures(rows: list[dict], cut: float) -> dict:
    pos = [r["p_yes"] for r in rows if r["answerable"]]
    neg = [r["p_yes"] for r in rows if not r["answerable"]]
    return {"questions": len(rows), "auc": auc(pos, neg),
            "abstention_recall": round(sum(p < cut for p in neg) / max(1, len(neg)), 3),
            "false_abstentions": round(sum(p < cut for p in pos) / max(1, len(pos)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "data" / "squad-dev")
    parser.add_argument("--limit", type=int, default=160)
    parser.add_argument("--seed", type=int, default=11)  # not the seed `eval answers` samples with
    parser.add_argument("--gguf", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, help="also write each question's P(yes) per model (JSONL)")
    args = parser.parse_args()
    ds = DocStack()
    dataset, collection = harness.prepare(ds, args.dataset)
    questions = dataset.sample(args.limit, seed=args.seed)
    random.Random(args.seed).shuffle(questions)
    report, per_question = {"dataset": dataset.name, "seed": args.seed}, []
    for path in args.gguf:
        model = YesNo(path, ds.settings.n_ctx)
        builder = PromptBuilder(model.count_tokens, ds.settings.n_ctx, ds.settings.max_answer_tokens)
        rows, started = [], time.perf_counter()
        for q in questions:
            hits = ds.library.retrieve(q.text, collection, ds.settings.ask_k).hits
            system = builder.run(q.text, hits).messages[0]
            p = model.p_yes([system, {"role": "user", "content": CHECK.format(q=q.text)}])
            rows.append({"id": q.id, "answerable": q.answerable, "p_yes": round(p, 4)})
        half = len(rows) // 2
        cut = threshold(rows[:half])
        report[path.name] = {"threshold": round(cut, 4), "tune": figures(rows[:half], cut),
                             "test": figures(rows[half:], cut),
                             "seconds_per_question": round((time.perf_counter() - started) / len(rows), 2)}
        print(json.dumps({path.name: report[path.name]}), file=sys.stderr, flush=True)
        per_question += [{"model": path.name, **r} for r in rows]
        del model
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in per_question))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
