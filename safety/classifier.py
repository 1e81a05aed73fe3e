"""A logistic regression on the project's MiniLM sentence embeddings, trained on first use from the
labelled set shipped in safety/data/injection_train.jsonl (written for docstack, no hub data) and
cached under the data directory, keyed by the training file and the embedding model.

It generalises to paraphrases that no rule spells out ("set aside the guidance you got"), at the
cost of a second embedding of the question (~10-20 ms on 2 cores)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from docstack.safety.base import Finding, Verdict

log = logging.getLogger(__name__)

TRAINING_SET = Path(__file__).with_name("data") / "injection_train.jsonl"
Embed = Callable[[Sequence[str]], np.ndarray]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 25) -> np.ndarray:
    """Weights (bias last) by Newton's method: 385 parameters, converges in a few steps."""
    x = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]).astype(np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


class EmbeddingClassifier:
    name = "minilm-logreg"
    stages = ("input",)

    def __init__(self, embed: Embed, model_name: str, cache_dir: Path, threshold: float = 0.85,
                 training_set: Path = TRAINING_SET):
        self.embed = embed
        self.threshold = threshold
        raw = training_set.read_bytes()
        key = hashlib.sha256(raw + model_name.encode()).hexdigest()[:16]
        self.cache = cache_dir / f"injection-logreg-{key}.npy"
        self.training_set = training_set
        self._weights: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def weights(self) -> np.ndarray:
        with self._lock:
            if self._weights is None:
                self._weights = self._load_or_train()
            return self._weights

    def _load_or_train(self) -> np.ndarray:
        if self.cache.is_file():
            return np.load(self.cache)
        rows = [json.loads(line) for line in self.training_set.read_text(encoding="utf-8").splitlines() if line.strip()]
        texts = [r["text"] for r in rows]
        # In small batches: the embedder runs those on NumPy, without importing torch (~9 s).
        x = np.vstack([self.embed(texts[i:i + 8]) for i in range(0, len(texts), 8)])
        y = np.array([r["label"] for r in rows], dtype=np.float64)
        weights = fit_logistic(np.asarray(x), y)
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache.with_suffix(".tmp.npy")
        np.save(tmp, weights)
        tmp.replace(self.cache)
        log.info("trained the injection classifier on %d texts", len(rows))
        return weights

    def score(self, texts: Sequence[str]) -> np.ndarray:
        w = self.weights
        x = np.asarray(self.embed(list(texts)), dtype=np.float64)
        return 1 / (1 + np.exp(-(x @ w[:-1] + w[-1])))

    def run(self, text: str, stage: str) -> Verdict:
        score = float(self.score([text])[0])
        return Verdict.of(self.name, stage, text, [Finding("injection", score)] if score >= self.threshold else [])
