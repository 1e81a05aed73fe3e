"""The same questions through `docstack ask` and through the web app, side by side, right after
`docstack up` (issue 18: the web app's first answer took 15 s to its first token, the CLI's 10 s
in all).

One run: `docstack up` (embedded profile: llama.cpp, Llama Stack, the web app) on free ports with
its own DOCSTACK_HOME, `docstack ingest` of docstack/samples, then for each question the CLI
(`docstack ask --json` as a subprocess: its first token and total, and the process's wall time)
and the web app in Debian's Chromium through Playwright (from pressing Enter to the first answer
text, and to the answer's timing line). The web app's first question is the first thing its page
is asked after `up`, as a new user would; the second is a follow-up in the same chat (the app
rewrites it with the history first); the third is asked in a fresh chat of the warm app. Before
each answer the model server is given a different short prompt, so neither side gets the other's
prompt from llama.cpp's prefix cache.

    .venv/bin/python bench/bench_webapp_latency.py [--cli-first]

Prints a table and writes JSON to bench/results/webapp-latency-<time>.json."""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import SHARED_MODELS, free_port

SAMPLES = sorted(p for p in (ROOT / "docstack" / "samples").iterdir() if p.is_file())
# (question, how the web app gets it): "first" on the page opened right after `up`, "follow-up"
# in that chat, "fresh" in a new chat.
QUESTIONS = [("How do I back up docstack?", "first"), ("Where are vectors stored?", "follow-up"),
             ("Does docstack need the internet?", "fresh")]
ASSISTANT = '[data-testid="stChatMessage"]:has([data-testid="stChatMessageAvatarAssistant"])'
TIMING = re.compile(r"first token ([\d.—]+)(?: s)?.* total ([\d.]+) s")
# Polled in the page, so a time is when the browser shows the text, not when Python looks.
ANSWER_SHOWN = """([sel, n]) => { const m = document.querySelectorAll(sel)[n];
  const t = m && m.querySelector('[data-testid="stMarkdown"]');
  return !!t && t.innerText.trim().length > 0; }"""
TIMING_SHOWN = """([sel, n]) => { const m = document.querySelectorAll(sel)[n];
  return !!m && /first token .* total/.test(m.innerText); }"""
LIMIT_MS = 300_000


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "DOCSTACK_HOME": str(home), "DOCSTACK_MODELS_DIR": str(SHARED_MODELS),
            "DOCSTACK_STACK_PORT": str(free_port()), "DOCSTACK_MODEL_PORT": str(free_port()),
            "DOCSTACK_UI_PORT": str(free_port())}


def docstack(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "docstack.cli", *args], capture_output=True, text=True,
                            env=env, timeout=timeout, check=False)
    if result.returncode:
        sys.exit(f"docstack {' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
    return result


def cpu_seconds(pids) -> float:
    """User + system CPU seconds the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def browser_pids() -> list[int]:
    """This process's descendants: Playwright's driver and Chromium."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [os.getpid()]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished child processes: the CLI's
    return usage.ru_utime + usage.ru_stime


def service_pid(env: dict[str, str], name: str) -> int:
    return int(next((Path(env["DOCSTACK_HOME"]) / "run").glob(f"{name}@*.pid")).read_text())


def flush_prompt_cache(env: dict[str, str]) -> None:
    """A different prompt through the model server, so the next answer's prompt is not cached."""
    url = f"http://127.0.0.1:{env['DOCSTACK_MODEL_PORT']}/v1/completions"
    httpx.post(url, json={"prompt": f"Count to three. {time.time()}", "max_tokens": 1}, timeout=120).raise_for_status()


def cli_ask(env: dict[str, str], question: str) -> dict:
    started, at = time.perf_counter(), time.time()
    result = docstack(env, "ask", question, "--collection", "samples", "--json")
    wall = time.perf_counter() - started
    answer = json.loads(result.stdout)
    return {"first_token_s": answer["first_token_seconds"], "total_s": answer["seconds"], "wall_s": round(wall, 2),
            "at": round(at, 3), "answer": answer["answer"]}


def web_ask(page, question: str) -> dict:
    """Ask on the open Chat page; seconds from Enter to the answer's first text and to its timing
    line, and the stack's own first token and total from that line."""
    n = page.locator(ASSISTANT).count()
    page.locator('[data-testid="stChatInputTextArea"]:enabled').fill(question)
    started, at = time.perf_counter(), time.time()
    page.keyboard.press("Enter")
    page.wait_for_function(ANSWER_SHOWN, arg=[ASSISTANT, n], polling=20, timeout=LIMIT_MS)
    first = time.perf_counter() - started
    page.wait_for_function(TIMING_SHOWN, arg=[ASSISTANT, n], polling=20, timeout=LIMIT_MS)
    total = time.perf_counter() - started
    message = page.locator(ASSISTANT).nth(n)
    stack_first, stack_total = TIMING.search(message.inner_text()).groups()
    return {"first_token_s": round(first, 2), "total_s": round(total, 2), "at": round(at, 3),
            "stack_first_token_s": None if stack_first == "—" else float(stack_first),
            "stack_total_s": float(stack_total),
            "answer": message.locator('[data-testid="stMarkdown"]').first.inner_text()}


def open_chat(browser, ui: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{ui}/?collection=samples")
    page.locator('[data-testid="stChatInputTextArea"]:enabled').wait_for(timeout=LIMIT_MS)
    return page


def run(env: dict[str, str], cli_first: bool) -> list[dict]:
    from playwright.sync_api import sync_playwright

    ui = f"http://127.0.0.1:{env['DOCSTACK_UI_PORT']}"
    started = time.perf_counter()
    docstack(env, "up")
    up_s = time.perf_counter() - started
    docstack(env, "ingest", *map(str, SAMPLES), "--collection", "samples")
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = None
        for i, (question, how) in enumerate(QUESTIONS):
            sides = {}
            order = ("cli", "web") if cli_first == (i % 2 == 0) else ("web", "cli")
            for side in order:
                flush_prompt_cache(env)
                if side == "web" and (page is None or how == "fresh"):
                    page = open_chat(browser, ui)
                # CPU seconds while answering: the model server, and the side's own processes
                # (the CLI process; the app's server, Playwright and Chromium).
                model, own = [service_pid(env, "model")], [service_pid(env, "ui"), *browser_pids()]
                before = cpu_seconds(model), cpu_seconds(own) if side == "web" else children_cpu()
                sides[side] = cli_ask(env, question) if side == "cli" else web_ask(page, question)
                after = cpu_seconds(model), cpu_seconds(own) if side == "web" else children_cpu()
                sides[side] |= {"model_cpu_s": round(after[0] - before[0], 2), "own_cpu_s": round(after[1] - before[1], 2)}
            rows.append({"question": question, "web_asked": how, "order": order, **sides})
        browser.close()
    return [{"up_s": round(up_s, 1)}, *rows]


def table(rows: list[dict]) -> str:
    lines = [(f"{'question':34} {'web asked':10} {'CLI first/total (wall)':>24} {'web first/total':>16} "
              f"{'ratio first/total':>18} {'CPU s model/own CLI | web':>26}")]
    for r in rows:
        cli, web = r["cli"], r["web"]
        lines.append(f"{r['question'][:34]:34} {r['web_asked']:10} "
                     f"{cli['first_token_s']:>7.2f} /{cli['total_s']:>6.2f} ({cli['wall_s']:>5.1f}) "
                     f"{web['first_token_s']:>7.2f} /{web['total_s']:>6.2f} "
                     f"{web['first_token_s'] / cli['first_token_s']:>9.2f} /{web['total_s'] / cli['total_s']:>6.2f} "
                     f"{cli['model_cpu_s']:>6.1f} /{cli['own_cpu_s']:>5.1f} | {web['model_cpu_s']:>5.1f} /{web['own_cpu_s']:>5.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli-first", action="store_true", help="ask the first question on the CLI first")
    parser.add_argument("--gguf", help="serve this GGUF instead of the shipped model (DOCSTACK_GGUF)")
    parser.add_argument("--label", default="", help="a name for the results file")
    args = parser.parse_args()
    if shutil.which("chromium") is None:
        sys.exit("no chromium: `apt-get install -y chromium` (`make install` does it)")
    with tempfile.TemporaryDirectory(prefix="bench-webapp-") as tmp:
        env = environment(Path(tmp) / "home")
        if args.gguf:
            env["DOCSTACK_GGUF"] = str(Path(args.gguf).resolve())
        try:
            head, *rows = run(env, args.cli_first)
        finally:
            subprocess.run([sys.executable, "-m", "docstack.cli", "down"], env=env, capture_output=True, check=False)
    load = os.getloadavg()
    print(f"model {Path(args.gguf).name if args.gguf else 'shipped'}; `docstack up` took {head['up_s']} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {os.cpu_count()} cores")
    print("seconds; CLI first/total are the answer's own (the pipeline's clock), wall the whole process;")
    print("web first/total are from pressing Enter to the first answer text and to the timing line;")
    print("CPU s: used while answering by the model server, and by the CLI process or the app's server + browser")
    print(table(rows))
    out = ROOT / "bench" / "results" / f"webapp-latency-{args.label + '-' if args.label else ''}{int(time.time())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**head, "gguf": args.gguf, "load_average": load, "cpus": os.cpu_count(), "questions": rows}, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
