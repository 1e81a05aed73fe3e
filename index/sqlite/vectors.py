"""The FAISS side of a collection: exact search while small, IVF beyond a threshold.

The index is a cache of the vectors SQLite holds. It is saved now and then, never on every
write, so adding N chunks costs O(N); whoever opens the collection reconciles the cached index
with SQLite by chunk id (ids are never reused), so a stale or missing file is never wrong."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)

# Exact (flat) search below this many vectors; IVF from here on. At 100k, flat search costs
# about 10-20 ms a query on one core; beyond it IVF keeps queries fast (see bench/bench_index.py).
IVF_THRESHOLD = 100_000
# IVF probes this share of its lists. bench/bench_index.py, one core: recall@10 against exact
# 0.991 at 100k (6 ms against 17 ms exact) and 0.977 at 1M (74 ms against 222 ms); 1/8 fell to
# 0.94 at 1M and 1/16 to 0.88.
IVF_PROBE_FRACTION = 1 / 4
# An IVF index is retrained once the collection has grown this much since training.
RETRAIN_GROWTH = 4.0


class VectorIndex:
    def __init__(self, index: faiss.Index, trained_size: int = 0):
        self.index = index
        self.trained_size = trained_size

    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def build(cls, dimension: int, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        """The right kind of index for this many vectors, filled with them."""
        if len(ids) < IVF_THRESHOLD:
            built = cls.empty(dimension)
        else:
            nlist = int(4 * math.sqrt(len(ids)))
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), nlist * 40), False)]
            ivf.train(sample)
            ivf.nprobe = max(1, int(nlist * IVF_PROBE_FRACTION))
            built = cls(ivf, trained_size=len(ids))
        built.add(ids, vectors)
        return built

    @property
    def is_ivf(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    def __len__(self) -> int:
        return self.index.ntotal

    def needs_rebuild(self) -> bool:
        n = len(self)
        if self.is_ivf:
            return n < IVF_THRESHOLD / 2 or n > self.trained_size * RETRAIN_GROWTH
        return n >= IVF_THRESHOLD

    def ids(self) -> np.ndarray:
        if not self.is_ivf:
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        lists = self.index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(self.index.nlist) if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The k nearest ids by inner product, only among `allowed` ids when given."""
        if len(self) == 0 or (allowed is not None and len(allowed) == 0):
            return []
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = (faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe) if self.is_ivf
                      else faiss.SearchParameters(sel=selector))
        scores, ids = self.index.search(vector.reshape(1, -1).astype(np.float32), min(k, len(self)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    # -- files ---------------------------------------------------------------------------
    def save(self, folder: Path, generation: int) -> None:
        """Write atomically as ``index-<generation>.faiss`` and drop older files (never newer ones:
        a reader that rebuilt an old generation must not delete a writer's newer save)."""
        target = folder / f"index-{generation}.faiss"
        tmp = target.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        for old in folder.glob("index-*.faiss"):
            if int(old.stem.split("-")[1]) < generation:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path, dimension: int) -> tuple[VectorIndex, int]:
        """The newest saved index and its generation, or an empty index and -1."""
        saved = sorted(folder.glob("index-*.faiss"), key=lambda p: int(p.stem.split("-")[1]))
        for path in reversed(saved):
            try:
                index = faiss.read_index(str(path))
            except RuntimeError as exc:
                log.warning("%s is unreadable (%s); rebuilding from SQLite", path, exc)
                continue
            if index.d == dimension:
                trained = index.ntotal if isinstance(index, faiss.IndexIVF) else 0
                return cls(index, trained_size=trained), int(path.stem.split("-")[1])
        return cls.empty(dimension), -1
