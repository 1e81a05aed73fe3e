"""Long jobs through the real model: a rerun makes no model call, a `kill -9` loses at most the
unit in flight, and how close the ETA comes to the time the job really took.

    .venv/bin/python bench/longdoc/jobs.py [--section "30 Geometry"] [--eta-pages 67-106]

On the Octave manual, on the embedded stack (started on the benchmark's ports unless it runs
there), each step a `docstack summarize ... --json` process as a user starts it:

1. Rerun: the section is summarised (from the cache if summaries.py ran before), then again; the
   second result must say `model_calls: 0` with every unit cached.
2. Resume: the collection's cached units are cleared and the same summary started as a
   subprocess; the job's row is polled until its first unit is done, then the process gets
   SIGKILL. `docstack jobs --json` must then list the job as interrupted; the same command run
   again must find the finished units (`cached_units` > 0) and compute only the rest
   (`model_calls` = units - cached_units, plus the reduce).
3. ETA: a summary of more pages (PDF pages 67-106 by default: ~10 units) from a cleared cache,
   its job row polled every 2 s; each time a unit finishes the row carries `eta_seconds` as of
   its `updated` time. The ETA recorded once >= 10% of the units are done is compared with the
   time the job really took from then to its end (`done`); the error of every later ETA is
   reported too. The map units' ETA does not know of the reduce request that follows them, so
   that shows as error as well.

The job rows are polled through `DocStack.jobs` (what `docstack jobs --json` prints, read in this
process: starting the CLI every 2 s would take CPU from the model being timed); the CLI's own
`docstack jobs --json` is run after the kill and at the end."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import DOCSTACK, ENV, OCTAVE_PDF, ROOT, Skip, Stack, Watch, clear_cached_units, cli, log, need  # noqa: E402

COLLECTION = "octave"


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*DOCSTACK, *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, **ENV})


def running_job(ds, since: float) -> dict | None:
    jobs = [j.to_json() for j in ds.jobs(COLLECTION) if j.operation == "summarize" and j.started >= since - 1]
    return jobs[0] if jobs else None


def rerun(section: str) -> dict:
    first, first_s = cli("summarize", OCTAVE_PDF.name, "-c", COLLECTION, "--section", section, timeout=3600)
    again, again_s = cli("summarize", OCTAVE_PDF.name, "-c", COLLECTION, "--section", section, timeout=600)
    return {"section": section, "units": again["units"], "first_model_calls": first["model_calls"],
            "first_seconds": round(first_s, 1), "rerun_model_calls": again["model_calls"],
            "rerun_cached_units": again["cached_units"], "rerun_seconds": round(again_s, 1),
            "same_summary": first["summary"] == again["summary"], "ok": again["model_calls"] == 0}


def resume(ds, section: str) -> dict:
    clear_cached_units(COLLECTION)
    args = ["summarize", OCTAVE_PDF.name, "-c", COLLECTION, "--section", section]
    since = time.time()
    process = start(args)
    job = None
    while process.poll() is None:
        job = running_job(ds, since)
        if job and job["done"] >= 1:
            break
        time.sleep(0.5)
    if process.poll() is not None:
        raise RuntimeError(f"the summary ended before it could be killed: {process.stderr.read()[-500:]}")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = {"done": job["done"], "total": job["total"]}
    listed, _ = cli("jobs", "-c", COLLECTION)
    state = next((j["state"] for j in listed if j["id"] == job["id"]), None)
    result, seconds = cli(*args, timeout=3600)
    reduce_calls = result["model_calls"] - (result["units"] - result["cached_units"])
    return {"section": section, "units": result["units"], "killed_after": killed_at,
            "state_after_kill": state, "cached_units": result["cached_units"], "model_calls": result["model_calls"],
            "reduce_calls": reduce_calls, "rerun_seconds": round(seconds, 1),
            "ok": state == "interrupted" and result["cached_units"] >= killed_at["done"] > 0
            and reduce_calls in (0, 1)}


def eta(ds, pages: str, poll: float = 2.0) -> dict:
    clear_cached_units(COLLECTION)
    since = time.time()
    process = start(["summarize", OCTAVE_PDF.name, "-c", COLLECTION, "--pages", pages])
    seen: dict[float, dict] = {}  # the job row at each save (its `updated`)
    while process.poll() is None:
        job = running_job(ds, since)
        if job:
            seen[job["updated"]] = job
        time.sleep(poll)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"docstack summarize --pages {pages} failed: {err[-500:]}")
    job = running_job(ds, since)
    seen[job["updated"]] = job
    end = job["updated"]

    result = json.loads(out)
    units = result["units"]
    points = sorted((j for j in seen.values() if j["state"] == "running" and j["eta_seconds"] is not None
                     and j["done"] < units), key=lambda j: j["updated"])
    first = next((j for j in points if j["done"] >= math.ceil(0.1 * units)), None)
    errors = [{"done": f"{j['done']}/{units}", "eta_s": j["eta_seconds"], "actual_s": round(end - j["updated"], 1),
               "error": round(abs(j["eta_seconds"] - (end - j["updated"])) / (end - j["updated"]), 3)}
              for j in points if end > j["updated"]]
    return {"pages": pages, "units": units, "model_calls": result["model_calls"],
            "seconds": round(end - job["started"], 1),
            "eta_at_10_percent": next((e for e in errors if first and e["done"] == f"{first['done']}/{units}"), None),
            "eta_points": errors, "polls_seen": len(seen)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--section", default="30 Geometry")
    parser.add_argument("--eta-pages", default="67-106")
    parser.add_argument("--skip", nargs="*", default=[], choices=["rerun", "resume", "eta"])
    args = parser.parse_args()
    from docstack import DocStack

    try:
        need(OCTAVE_PDF)
        common.ingest([OCTAVE_PDF], COLLECTION)
        ds = DocStack()
        result = {}
        with Stack():
            result["machine_before"] = common.machine()
            for step, run in (("rerun", lambda: rerun(args.section)), ("resume", lambda: resume(ds, args.section)),
                              ("eta", lambda: eta(ds, args.eta_pages))):
                if step in args.skip:
                    continue
                log(f"jobs: {step}...")
                with Watch() as watch:
                    result[step] = run()
                result[step]["others_during"] = watch.report
    except Skip as exc:
        common.emit("jobs", {"skipped": str(exc)})
        return
    result["targets"] = {"rerun_model_calls": "0", "resume": "only the units left", "eta_error": "<= 0.25"}
    common.emit("jobs", result)


if __name__ == "__main__":
    main()
