"""The long-document benchmark (issue 15): runs each script of bench/longdoc and prints one table
of the numbers beside their targets.

    .venv/bin/python bench/longdoc/run.py [--only mentions compare ...] [--table]

Scripts: mentions.py (printed indexes of the Octave manual; latency on the PostgreSQL manual),
summaries.py, extraction.py, compare.py, jobs.py, and outline.py when it is there. The ones that
need the model share one embedded stack, started here (`docstack up --no-ui` on the benchmark's
ports, see common.py) unless it runs already, and stopped at the end if this started it. Each
script's JSON is kept in bench/longdoc/results/ (git-ignored); `--table` prints the table from
the kept results without running anything."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import RESULTS, Skip, Stack, log  # noqa: E402

HERE = Path(__file__).resolve().parent
SCRIPTS = ["mentions", "compare", "summaries", "extraction", "jobs"]
NEEDS_MODEL = {"summaries", "extraction", "jobs"}


def get(data: dict, *keys, default=None):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def met(value, target: str) -> str:
    """'yes'/'no' for a value against a target like '>= 0.9' or '<= 300'."""
    if value is None or not isinstance(value, int | float):
        return "-"
    op, bound = target.split()
    ok = value >= float(bound) if op == ">=" else value <= float(bound) if op == "<=" else value == float(bound)
    return "yes" if ok else "no"


def rows() -> list[tuple[str, object, str]]:
    """(measure, value, target) from the kept results."""
    out: list[tuple[str, object, str]] = []

    def load(name: str) -> dict:
        path = RESULTS / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    m = load("mentions")
    fi, ci = get(m, "octave", "Function Index") or {}, get(m, "octave", "Concept Index") or {}
    pg = m.get("postgres") or {}
    if fi:
        out += [("mentions: Function Index pair recall (exact)", get(fi, "exact", "pair_recall"), ">= 0.99"),
                ("mentions: Function Index median pages/term", get(fi, "exact", "median_pages"), "")]
    if ci:
        out += [("mentions: Concept Index pair recall, exact as printed", get(ci, "exact", "pair_recall"), ">= 0.85"),
                ("mentions: Concept Index pair recall, default (exact + related)",
                 get(ci, "default_exact_plus_related", "pair_recall"), ">= 0.85"),
                ("mentions: Concept Index median pages/term, default",
                 get(ci, "default_exact_plus_related", "median_pages"), "<= 5"),
                ("mentions: Concept Index pair recall, search top-5 pages (ranked)",
                 get(ci, "search_top5_ranked", "pair_recall"), ">= 0.85")]
    if pg and "skipped" not in pg:
        out += [("mentions: PostgreSQL manual p95 ms/term (default, 10 related)", pg.get("ms_default_p95"), "<= 300"),
                ("mentions: PostgreSQL manual p95 ms/term (exact only)", pg.get("ms_exact_only_p95"), "<= 300"),
                ("mentions: PostgreSQL manual ingest s", pg.get("ingest_seconds"), "")]
    s = load("summaries")
    for section in s.get("sections", []):
        out.append((f"summaries: {section['section']} ({section['page_count']} p.) wall s", section["wall_seconds"],
                    "<= 180"))
    if s.get("sections"):
        out += [("summaries: sentences supported (docstack's attribution)", s.get("supported_docstack"), ">= 0.9"),
                ("summaries: sentences supported (strict: words on cited pages)", s.get("supported_strict"), ">= 0.9")]
    for path in sorted(RESULTS.glob("extraction*.json")):
        e = json.loads(path.read_text())
        if "recall" not in e:
            continue
        model = e.get("model", "?").rsplit("/", 1)[-1].removeprefix("qwen2.5-").removesuffix("-instruct")
        out += [(f"extraction ({model}): recall", e["recall"], ">= 0.9"),
                (f"extraction ({model}): planted items in the passages read (recall ceiling)",
                 e.get("recall_ceiling_passages_read"), ""),
                (f"extraction ({model}): precision", e["precision"], ">= 0.9"),
                (f"extraction ({model}): page accuracy", e["page_accuracy"], ">= 0.95"),
                (f"extraction ({model}): model CPU min/1,000 pages (proportional)",
                 e.get("model_cpu_minutes_per_1000_pages_proportional"), "<= 10"),
                (f"extraction ({model}): model CPU min/1,000 pages (every chunk)",
                 e.get("model_cpu_minutes_per_1000_pages_every_chunk"), "<= 10")]
    c = load("compare")
    for kind in ("added", "removed", "changed", "overall"):
        if kind in c:
            out.append((f"compare: F1 {kind}", c[kind]["f1"], ">= 0.95"))
    j = load("jobs")
    if "rerun" in j:
        out.append(("jobs: model calls on a rerun", j["rerun"]["rerun_model_calls"], "== 0"))
    if "resume" in j:
        r = j["resume"]
        out.append((f"jobs: resume after kill -9 ({r['cached_units']}/{r['units']} units cached, "
                    f"{r['model_calls']} calls)", "ok" if r["ok"] else "FAILED", ""))
    if get(j, "eta", "eta_at_10_percent"):
        out.append(("jobs: ETA error at >= 10% done", j["eta"]["eta_at_10_percent"]["error"], "<= 0.25"))
    o = load("outline")
    for key, value in o.items():
        if isinstance(value, int | float) and key != "benchmark":
            out.append((f"outline: {key}", value, ""))
    return out


def table() -> str:
    lines = [f"{'measure':70s} {'value':>10s}  {'target':>8s}  met"]
    for name, value, target in rows():
        shown = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        lines.append(f"{name:70s} {shown:>10s}  {target:>8s}  {met(value, target) if target else ''}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    scripts = SCRIPTS + (["outline"] if (HERE / "outline.py").exists() else [])
    parser.add_argument("--only", nargs="+", choices=scripts, default=scripts)
    parser.add_argument("--table", action="store_true", help="print the table of the kept results only")
    args = parser.parse_args()
    if not args.table:
        chosen = [s for s in scripts if s in args.only]
        plain = [s for s in chosen if s not in NEEDS_MODEL]
        model = [s for s in chosen if s in NEEDS_MODEL]
        for name in plain:
            _run(name)
        if model:
            try:
                with Stack():
                    for name in model:
                        _run(name)
            except Skip as exc:
                log(f"the model benchmarks are skipped: {exc}")
    print(table())
    print(f"\nmachine now: {json.dumps(common.machine())}")


def _run(name: str) -> None:
    log(f"== {name}")
    started = time.time()
    out = subprocess.run([sys.executable, str(HERE / f"{name}.py")], text=True, stdout=subprocess.PIPE)
    log(f"== {name}: exit {out.returncode} after {time.time() - started:.0f}s")


if __name__ == "__main__":
    main()
