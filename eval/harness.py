"""`docstack eval`: ingest a dataset into its own collection, then measure retrieval or answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from docstack.api import DocStack
from docstack.eval import answers as answer_eval
from docstack.eval import retrieval as retrieval_eval
from docstack.eval.datasets import Dataset, load

Progress = Callable[[int, int], None]


def prepare(ds: DocStack, path: Path, collection: str | None = None) -> tuple[Dataset, str]:
    dataset = load(path, ds.settings.home / "eval")
    name = collection or f"eval-{dataset.name}"
    report = ds.ingest([dataset.docs], collection=name, sync=True)
    if report.errors and not report.files and not report.unchanged:
        raise ValueError(f"could not ingest {dataset.docs}: {report.errors[0]['error']}")
    return dataset, name


def retrieval(ds: DocStack, path: Path, modes: list[str], limit: int | None = None, collection: str | None = None,
              on_progress: Progress | None = None) -> dict:
    dataset, name = prepare(ds, path, collection)
    questions = dataset.sample(limit)

    def search(query: str, mode: str) -> list:
        return ds.search(query, collection=name, k=retrieval_eval.K, mode=mode)

    results = retrieval_eval.evaluate(search, dataset, modes, questions, on_progress)
    return {"dataset": dataset.name, "questions": sum(1 for q in questions if q.gold), "results": results}


def answers(ds: DocStack, path: Path, model: str | None = None, limit: int | None = None,
            collection: str | None = None, on_progress: Progress | None = None, details: bool = False) -> dict:
    dataset, name = prepare(ds, path, collection)
    questions = dataset.sample(limit)
    served: list[str] = []  # what answered: the router may pick, or fall back to, another model

    def ask(question: str):
        answer = ds.ask(question, collection=name, model=model)
        served.append(answer.model)
        return answer

    result = answer_eval.evaluate(ask, questions, on_progress, details)
    return {"dataset": dataset.name, "model": ", ".join(dict.fromkeys(served)) or model or "none answered", **result}
