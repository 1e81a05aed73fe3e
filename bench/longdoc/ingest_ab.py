"""`docstack ingest` of a long PDF with two builds of docstack, side by side in one run: how much
a change to ingest costs, measured as a user meets it.

    .venv/bin/python bench/longdoc/ingest_ab.py --before OTHER/.venv/bin/python [--after PYTHON]
        [--pdf PATH] [--rounds 2]

`--before` and `--after` are Python interpreters with docstack installed (a second worktree at
the commit to compare with, `pip install -e . --no-deps` into its own venv); `--after` defaults
to this one. Each round runs the two one after the other, in a fresh process with a fresh
DOCSTACK_HOME (so nothing is unchanged), sharing the models folder. The default PDF is the GNU
Octave manual (1,158 pages; `apt-get install octave-doc`). Prints the ingest seconds each run
reported (model loading excluded) and its wall seconds (included), the chunks, and the ratio of
the medians: after / before. On a shared machine, alternating the two keeps a busy spell from
landing on one side only. `DOCSTACK_EMBEDDING_MODEL=docstack/all-MiniLM-L6-v2-static` in the
environment times it with the static model, where embedding takes least and parsing counts most."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OCTAVE = Path("/usr/share/doc/octave/octave.pdf")
MODELS = Path.home() / ".docstack" / "models"


def ingest(python: str, pdf: Path, home: Path) -> dict:
    """One `docstack ingest --json` in its own process; its report, with the wall seconds."""
    env = {**os.environ, "DOCSTACK_HOME": str(home), "DOCSTACK_MODELS_DIR": str(MODELS)}
    started = time.perf_counter()
    # Run from the empty home: a checkout as the working directory would shadow the build under test.
    out = subprocess.run([python, "-m", "docstack.cli", "ingest", str(pdf), "--json"], capture_output=True,
                         text=True, env=env, cwd=home, check=True)
    wall = time.perf_counter() - started
    report = json.loads(out.stdout[out.stdout.index("{"):])
    return {"seconds": report["seconds"], "wall": round(wall, 1), "chunks": report["chunks"],
            "errors": report["errors"]}


def summary(runs: list[dict]) -> dict:
    return {"seconds": [r["seconds"] for r in runs], "wall": [r["wall"] for r in runs],
            "median_s": round(statistics.median(r["seconds"] for r in runs), 1),
            "chunks": runs[0]["chunks"], "errors": runs[0]["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, help="Python interpreter of the build to compare with")
    parser.add_argument("--after", default=sys.executable)
    parser.add_argument("--pdf", type=Path, default=OCTAVE)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not args.pdf.is_file():
        print(json.dumps({"skipped": f"{args.pdf} not found: apt-get install octave-doc, or pass --pdf"}))
        return
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for side in ("before", "after"):
                home = Path(tmp) / f"{side}-{round_}"
                home.mkdir()
                runs[side].append(ingest(getattr(args, side), args.pdf, home))
                print(side, runs[side][-1], file=sys.stderr, flush=True)
    result = {side: summary(r) for side, r in runs.items()}
    result["ratio"] = round(result["after"]["median_s"] / result["before"]["median_s"], 3)
    result["machine"] = {"cpus": len(os.sched_getaffinity(0)), "load": os.getloadavg()}
    print(json.dumps({"pdf": str(args.pdf), **result}, indent=2))


if __name__ == "__main__":
    main()
