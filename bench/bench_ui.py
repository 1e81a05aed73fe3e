"""Web app benchmark, in one run against the app `DocStack.up()` starts (real stack, real model),
driven by Debian's Chromium through Playwright:

- uploading the sample corpus (docstack/samples/) through the Documents page vs `docstack ingest` of the
  same files (a fresh collection each time; rounds alternate so neither side gets a warmer cache);
- how long after `goto` the Chat page takes to accept a question;
- the first token in the browser (from pressing Enter) vs the first token the stack measured for
  the same answer (shown in the answer's timing line).

    .venv/bin/python bench/bench_ui.py [--rounds 2] [--questions 3]

Prints one JSON object. Questions are distinct so llama.cpp's prompt cache does not flatter."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docstack import DocStack, Settings  # noqa: E402
from docstack.stack.models import QWEN_0_5B, ensure_gguf  # noqa: E402
from tests.conftest import free_port  # noqa: E402

SAMPLES = sorted(p for p in (ROOT / "docstack" / "samples").iterdir() if p.is_file())
QUESTIONS = ["How do I back up docstack?", "Where are vectors stored?", "How do I upgrade docstack?",
             "Does docstack need the internet?", "Which language model answers?"]
ASSISTANT = '[data-testid="stChatMessage"]:has([data-testid="stChatMessageAvatarAssistant"])'


def cli_ingest(settings: Settings, collection: str) -> float:
    env = {**os.environ, "DOCSTACK_HOME": str(settings.home)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "docstack.cli", "ingest", *map(str, SAMPLES), "--collection",
                             collection, "--json"], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    report = json.loads(result.stdout)
    assert report["files"] == len(SAMPLES) and not report["errors"], result.stdout + result.stderr
    return seconds


def page_upload(browser, ui: str, ds: DocStack, collection: str) -> float:
    ds.create_collection(collection)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{ui}/documents?collection={collection}")
    page.get_by_text(f"0 documents in {collection}").wait_for(timeout=60_000)
    started = time.perf_counter()
    page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files([str(p) for p in SAMPLES])
    page.get_by_text(f"{len(SAMPLES)} documents in {collection}").wait_for(timeout=300_000)
    seconds = time.perf_counter() - started
    page.close()
    return seconds


def chat_interactive(browser, ui: str) -> float:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    started = time.perf_counter()
    page.goto(f"{ui}/?collection=samples")
    page.locator('[data-testid="stChatInputTextArea"]:enabled').wait_for(timeout=60_000)
    seconds = time.perf_counter() - started
    page.close()
    return seconds


def first_tokens(browser, ui: str, question: str) -> tuple[float, float]:
    """(browser first token, stack first token) in seconds for one question."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{ui}/?collection=samples")
    box = page.locator('[data-testid="stChatInputTextArea"]:enabled')
    box.wait_for(timeout=60_000)
    box.fill(question)
    message = page.locator(ASSISTANT).first
    text = message.locator('[data-testid="stMarkdown"]').first
    started = time.perf_counter()
    page.keyboard.press("Enter")
    # Polled in the page, so the time is when the browser shows the text, not when Python looks.
    page.wait_for_function(
        "sel => { const m = document.querySelector(sel);"
        " const t = m && m.querySelector('[data-testid=\"stMarkdown\"]');"
        " return t && t.innerText.trim().length > 0; }", arg=ASSISTANT, polling=20, timeout=300_000)
    browser_first = time.perf_counter() - started
    timing = message.get_by_text(re.compile(r"first token .* total"))
    timing.wait_for(timeout=300_000)
    stack_first = float(re.search(r"first token ([\d.]+) s", timing.inner_text()).group(1))
    assert text.inner_text().strip()
    page.close()
    return browser_first, stack_first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--questions", type=int, default=3)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("no chromium: `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", stack_port=free_port(), model_port=free_port(),
                            ui_port=free_port(), gguf=ensure_gguf(QWEN_0_5B, Path.home() / ".docstack" / "models"))
        ds = DocStack(settings)
        ds.ingest(SAMPLES, collection="samples")
        ds.up(with_ui=True)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                chat_interactive(browser, settings.ui_url)  # the server's first page load is start-up
                cli, page = [], []
                for r in range(args.rounds):
                    cli.append(cli_ingest(settings, f"cli-{r}"))
                    page.append(page_upload(browser, settings.ui_url, ds, f"page-{r}"))
                interactive = [chat_interactive(browser, settings.ui_url) for _ in range(3)]
                tokens = [first_tokens(browser, settings.ui_url, q) for q in QUESTIONS[: args.questions]]
                browser.close()
        finally:
            ds.down()
    gaps = [b - s for b, s in tokens]
    print(json.dumps({
        "upload": {"files": len(SAMPLES), "page_s": [round(x, 2) for x in page], "cli_s": [round(x, 2) for x in cli],
                   "ratio_median": round(statistics.median(page) / statistics.median(cli), 2)},
        "chat_interactive_s": {"median": round(statistics.median(interactive), 2), "max": round(max(interactive), 2)},
        "first_token": {"browser_s": [round(b, 2) for b, _ in tokens], "stack_s": [s for _, s in tokens],
                        "gap_median_s": round(statistics.median(gaps), 2), "gap_max_s": round(max(gaps), 2)},
        "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
