"""The learned input shield's candidates, side by side, and how each generalises across corpora.

    .venv/bin/python bench/bench_injection_shield.py [--limit N] [--json FILE]

Every candidate is trained on the same train splits as the shipped model (safety/corpora.py:
S-Labs, neuralchemy and docstack's own sets, own texts weighted as in safety/train.py), its
threshold chosen on the validation splits by the same rule, and measured on held-out sets only:
the S-Labs and neuralchemy test splits, the multilingual attacks (yanismiraoui, never trained on),
docstack's held-out conversational turns and multilingual benign questions. Latency is one
question at a time on this machine, the embedding included (in the app retrieval reuses it).

Cross-dataset: the shipped recipe trained on one external corpus (plus docstack's own sets),
threshold on that corpus's validation split, tested on the other corpus's test split. That figure,
not the in-distribution one, is what to expect on attacks written elsewhere.

This measures the classifier alone; `docstack eval safety --dataset s-labs:test` measures the
whole input stage (rules, keyword checks and the classifier)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docstack.index.embedder import Embedder
from docstack.safety import corpora
from docstack.safety.classifier import MINILM, MULTILINGUAL, MultilingualEncoder, NgramHasher
from docstack.safety.train import OWN_WEIGHT, fit, rates, sample, threshold_for

REDTEAM = Path(__file__).resolve().parent.parent / "eval" / "redteam"


def held_out_sets(limit: int | None) -> dict[str, list]:
    sets = {name: sample(corpora.load(name), limit) for name in ("s-labs:test", "neuralchemy:test")}
    sets["multilingual attacks"] = [e for e in corpora.load("yanismiraoui") if e.language != "en"]
    for name, file in (("conversational turns", "conversational.jsonl"), ("multilingual benign", "multilingual_benign.jsonl")):
        rows = [json.loads(line) for line in (REDTEAM / file).read_text(encoding="utf-8").splitlines() if line.strip()]
        sets[name] = [corpora.Example(r["text"], 0, name) for r in rows]
    return sets


class Views:
    """Each text's embeddings and n-gram row, computed once for all candidates."""

    def __init__(self, embed: dict, hasher: NgramHasher):
        self.embed, self.hasher = embed, hasher
        self.cache: dict[str, dict[str, np.ndarray]] = {name: {} for name in embed}

    def dense(self, examples, *names: str) -> np.ndarray:
        parts = []
        for name in names:
            cache = self.cache[name]
            todo = list(dict.fromkeys(e.text for e in examples if e.text not in cache))
            for text, vector in zip(todo, self.embed[name](todo) if todo else [], strict=True):
                cache[text] = vector
            parts.append(np.vstack([cache[e.text] for e in examples]).astype(np.float64))
        return np.hstack(parts)

    def ngrams(self, examples):
        return self.hasher.matrix([e.text for e in examples])


def candidates():
    from scipy.sparse import csr_matrix, hstack
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier

    def logreg(x, y, w):
        coef, bias = fit(x, y, w)
        return lambda z: 1 / (1 + np.exp(-(z @ coef + bias)))

    def sk(model):
        def train(x, y, w):
            model.fit(x, y) if isinstance(model, MLPClassifier) else model.fit(x, y, sample_weight=w)
            return lambda z: model.predict_proba(z)[:, 1]
        return train

    def dense(*names):
        return lambda v, ex: v.dense(ex, *names)

    def with_ngrams(*names):
        return lambda v, ex: hstack([csr_matrix(v.dense(ex, *names)), v.ngrams(ex)]).tocsr()

    return {
        "MiniLM + logistic regression": (dense(MINILM), logreg),
        "MiniLM + MLP (256)": (dense(MINILM), sk(MLPClassifier((256,), alpha=1e-3, max_iter=300,
                                                               early_stopping=True, random_state=0))),
        "MiniLM + gradient boosting": (dense(MINILM), sk(HistGradientBoostingClassifier(random_state=0))),
        "multilingual USE + logistic regression": (dense(MULTILINGUAL), logreg),
        "char n-grams + logistic regression": (lambda v, ex: v.ngrams(ex), logreg),
        "MiniLM + n-grams + logistic regression": (with_ngrams(MINILM), logreg),
        "USE + n-grams + logistic regression": (with_ngrams(MULTILINGUAL), logreg),
        "MiniLM + USE + n-grams + logistic regression (shipped)": (with_ngrams(MINILM, MULTILINGUAL), logreg),
    }


def run_candidate(views, featurize, trainer, train_set, validation, held_out) -> dict:
    x = featurize(views, train_set)
    y = np.array([e.label for e in train_set], dtype=float)
    w = np.array([OWN_WEIGHT if e.source.startswith("docstack:") else 1.0 for e in train_set])
    started = time.perf_counter()
    score = trainer(x, y, w)
    fit_s = time.perf_counter() - started
    threshold = max(threshold_for(score(featurize(views, ex)), np.array([e.label for e in ex]), allowed)
                    for ex, allowed in validation)
    results = {name: rates(score(featurize(views, ex)), np.array([e.label for e in ex]), threshold)
               for name, ex in held_out.items()}
    return {"threshold": round(threshold, 4), "fit_s": round(fit_s, 1), "results": results, "score": score}


def latency_ms(featurize, score, texts: list[str], embed: dict, hasher: NgramHasher, forget) -> float:
    """One question at a time, as the shield sees it: fresh embeddings each time."""
    times = []
    for text in texts:
        forget()
        views = Views(embed, hasher)
        started = time.perf_counter()
        score(featurize(views, [corpora.Example(text, 0, "q")]))
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="at most this many texts per set")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    minilm = Embedder(MINILM, batch_size=64)
    embed = {MINILM: minilm.embed, MULTILINGUAL: MultilingualEncoder().embed}
    train_sets = {name: sample(corpora.load(name), args.limit) for name in corpora.TRAINING}
    train_all = [e for name in corpora.TRAINING for e in train_sets[name]]
    validation = {name: sample(corpora.load(name), args.limit) for name in corpora.VALIDATION}
    held_out = held_out_sets(args.limit)
    hasher = NgramHasher.fit([e.text for e in train_all])
    views = Views(embed, hasher)
    questions = [e.text for e in held_out["conversational turns"][:20] + held_out["s-labs:test"][:40]]

    report = {"candidates": {}, "cross_dataset": {}}
    for name, (featurize, trainer) in candidates().items():
        row = run_candidate(views, featurize, trainer, train_all,
                            [(validation[v], allowed) for v, allowed in corpora.VALIDATION.items()], held_out)
        row["latency_ms_median"] = latency_ms(featurize, row.pop("score"), questions, embed, hasher,
                                              minilm._recent.clear)  # the embedder remembers recent texts
        report["candidates"][name] = row
        print(name, json.dumps(row), flush=True)

    own = [e for name in corpora.TRAINING if name.startswith("docstack:") for e in train_sets[name]]
    featurize, trainer = candidates()["MiniLM + USE + n-grams + logistic regression (shipped)"]
    for source, target in (("s-labs", "neuralchemy"), ("neuralchemy", "s-labs")):
        train_one = train_sets[f"{source}:train"] + own
        cross_views = Views(embed, NgramHasher.fit([e.text for e in train_one]))
        cross_views.cache = views.cache
        row = run_candidate(cross_views, featurize, trainer, train_one,
                            [(validation[f"{source}:validation"], corpora.VALIDATION[f"{source}:validation"])],
                            {f"{source}:test": held_out[f"{source}:test"], f"{target}:test": held_out[f"{target}:test"]})
        row.pop("score")
        report["cross_dataset"][f"trained on {source}"] = row
        print(f"trained on {source}", json.dumps(row), flush=True)

    print()
    print("| candidate | S-Labs test blocked / false refusals | neuralchemy test | other languages blocked | "
          "conversational refused | multilingual benign refused | ms per question |")
    print("|---|---|---|---|---|---|---|")
    for name, row in report["candidates"].items():
        r = row["results"]
        print(f"| {name} | {r['s-labs:test']['blocked']:.3f} / {r['s-labs:test']['false_refusals']:.3f} | "
              f"{r['neuralchemy:test']['blocked']:.3f} / {r['neuralchemy:test']['false_refusals']:.3f} | "
              f"{r['multilingual attacks']['blocked']:.3f} | {r['conversational turns']['false_refusals']:.3f} | "
              f"{r['multilingual benign']['false_refusals']:.3f} | {row['latency_ms_median']} |")
    for name, row in report["cross_dataset"].items():
        print(f"cross-dataset, {name}: " + ", ".join(f"{k} blocked {v['blocked']:.3f} at {v['false_refusals']:.3f} false refusals"
                                                      for k, v in row["results"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
