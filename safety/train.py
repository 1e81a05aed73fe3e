"""`docstack safety train`: rebuild the learned input shield from the corpora in the installed
wheels, deterministically, and write its provenance beside it.

Train splits only go into the fit; the threshold is the lowest score whose false refusals stay
within each validation split's allowance (safety/corpora.py); the test splits are only measured.
docstack's own small sets (about 1,000 texts) weigh 10 times an external text, so that 15,000
external texts, whose benign side is trivia and chit-chat, do not drown what a document Q&A app
is asked: greetings, thanks, "Summarise the onboarding steps."."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from docstack.safety import corpora
from docstack.safety.classifier import ENCODERS, MODEL, Embed, InjectionModel, NgramHasher, encoders

log = logging.getLogger(__name__)

OWN_WEIGHT = 10.0
C = 4.0  # inverse L2 strength (scikit-learn's default is 1)
SEED = 0
Progress = Callable[[str], None]


def sample(examples: list, limit: int | None, seed: int = SEED) -> list:
    """At most `limit` examples, the same ones on every run."""
    if limit is None or len(examples) <= limit:
        return examples
    return random.Random(seed).sample(examples, limit)


def fit(x, y: np.ndarray, weights: np.ndarray, c: float = C) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000, tol=1e-6).fit(x, y, sample_weight=weights)
    return model.coef_[0], float(model.intercept_[0])


def threshold_for(scores: np.ndarray, labels: np.ndarray, max_false_refusals: float) -> float:
    """The lowest threshold at which at most this share of the benign texts scores at or above it."""
    benign = np.sort(scores[labels == 0])[::-1]
    allowed = int(np.floor(max_false_refusals * len(benign)))
    return float(benign[allowed]) + 1e-6 if allowed < len(benign) else 0.0


def rates(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    flagged = scores >= threshold
    attacks, benign = labels == 1, labels == 0
    return {"attacks": int(attacks.sum()), "benign": int(benign.sum()),
            "blocked": round(float(flagged[attacks].mean()), 4) if attacks.any() else None,
            "false_refusals": round(float(flagged[benign].mean()), 4) if benign.any() else None}


class Featurizer:
    """Every view of a set of texts: each encoder's embeddings, then the hashed n-grams."""

    def __init__(self, embeds: Sequence[Embed], hasher: NgramHasher):
        self.embeds, self.hasher = embeds, hasher

    def dense(self, texts: Sequence[str]) -> np.ndarray:
        return np.hstack([np.asarray(embed(list(texts)), dtype=np.float64) for embed in self.embeds])

    def __call__(self, texts: Sequence[str]):
        from scipy.sparse import csr_matrix, hstack

        return hstack([csr_matrix(self.dense(texts)), self.hasher.matrix(texts)]).tocsr()


def train(out: Path = MODEL, limit: int | None = None, embedder=None, on_progress: Progress | None = None) -> dict:
    """Fit, choose the threshold, measure, write `out` and its provenance (`out` with .json).
    `embedder`: the retrieval embedder, reused where it is one of the model's encoders."""
    say = on_progress or (lambda _: None)
    train_sets = {name: sample(corpora.load(name), limit) for name in corpora.TRAINING}
    examples = [e for name in corpora.TRAINING for e in train_sets[name]]
    texts = [e.text for e in examples]
    say(f"hashing the n-grams of {len(texts)} training texts")
    hasher = NgramHasher.fit(texts)
    features = Featurizer(encoders(ENCODERS, embedder), hasher)
    say(f"embedding {len(texts)} training texts with {', '.join(ENCODERS)}")
    x = features(texts)
    y = np.array([e.label for e in examples], dtype=np.float64)
    weights = np.array([OWN_WEIGHT if e.source.startswith("docstack:") else 1.0 for e in examples])
    say("fitting the logistic regression")
    coef, bias = fit(x, y, weights)
    dense = x.shape[1] - hasher.size
    model = InjectionModel(ENCODERS, hasher, coef[:dense], coef[dense:], bias, 1.0)

    measured = {}
    for name in [*corpora.VALIDATION, *corpora.TESTS]:
        held = sample(corpora.load(name), limit)
        say(f"scoring {name} ({len(held)} texts)")
        measured[name] = (model.score(features.dense([e.text for e in held]), [e.text for e in held]),
                          np.array([e.label for e in held]))
    model.threshold = max(threshold_for(*measured[name], allowed) for name, allowed in corpora.VALIDATION.items())
    model.save(out)
    record = {
        "model": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "encoders": list(ENCODERS),
        "features": {"dense": int(model.dense_weights.size), "ngram_buckets": hasher.size,
                     "ngrams": "char 2-5 within words, crc32-hashed, sublinear TF-IDF"},
        "fit": {"kind": "logistic regression (scikit-learn lbfgs)", "C": C, "own_weight": OWN_WEIGHT,
                "seed": SEED, "limit_per_set": limit},
        "training": {name: len(train_sets[name]) for name in corpora.TRAINING},
        "threshold": round(model.threshold, 6),
        "threshold_rule": {name: f"false refusals <= {allowed}" for name, allowed in corpora.VALIDATION.items()},
        "measured": {name: rates(scores, labels, model.threshold) for name, (scores, labels) in measured.items()},
        "data": corpora.files([*corpora.TRAINING, *corpora.VALIDATION, *corpora.TESTS]),
        "licenses": corpora.LICENSES,
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("trained the injection model on %d texts, threshold %.3f", len(texts), model.threshold)
    return record
