"""What the long-document benchmarks share: the documents (installed with apt at benchmark time,
never committed), the benchmark's own docstack home and ports, the CLI as a subprocess, and the
embedded model stack started for the scripts that need a model.

Every script runs the real CLI (`docstack ... --json`) or the `DocStack` API on its own data
folder, by default build/longdoc/home (git-ignored; the ingested manuals are kept between runs,
an unchanged file is not ingested again), with its own ports so that a stack another session
runs on the default ports is left alone. Set DOCSTACK_HOME to use another folder."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"  # git-ignored: hand-check samples, raw outputs

OCTAVE_PDF = Path("/usr/share/doc/octave/octave.pdf")
GNUPLOT_PDF = Path("/usr/share/doc/gnuplot/gnuplot.pdf")
POSTGRES_HTML = Path("/usr/share/doc/postgresql-doc-15/html")
APT = {OCTAVE_PDF: "octave-doc", GNUPLOT_PDF: "gnuplot-doc", POSTGRES_HTML: "postgresql-doc-15"}

# The benchmark's own data folder and ports (a stack on docstack's default ports may be another's).
ENV = {
    "DOCSTACK_HOME": os.environ.get("DOCSTACK_HOME", str(ROOT / "build" / "longdoc" / "home")),
    "DOCSTACK_STACK_PORT": os.environ.get("DOCSTACK_STACK_PORT", "8421"),
    "DOCSTACK_MODEL_PORT": os.environ.get("DOCSTACK_MODEL_PORT", "8422"),
    "DOCSTACK_UI_PORT": os.environ.get("DOCSTACK_UI_PORT", "8521"),
}
# Models are shared with the default home when it has them (the 0.5B GGUF is assembled once).
if "DOCSTACK_MODELS_DIR" in os.environ:
    ENV["DOCSTACK_MODELS_DIR"] = os.environ["DOCSTACK_MODELS_DIR"]
elif (Path.home() / ".docstack" / "models").is_dir():
    ENV["DOCSTACK_MODELS_DIR"] = str(Path.home() / ".docstack" / "models")
os.environ.update(ENV)  # for the DocStack API in this process, too

DOCSTACK = [sys.executable, "-m", "docstack.cli"]


class Skip(Exception):
    """A benchmark that cannot run here (a document not installed); the reason says how to fix it."""


def need(path: Path) -> Path:
    if not path.exists():
        raise Skip(f"{path} not found: apt-get install -y {APT.get(path, '?')} (or `make bench-longdoc`)")
    return path


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cli(*args: str, timeout: float | None = None, check: bool = True) -> tuple[object, float]:
    """`docstack ARGS --json` in a fresh process, as a user runs it: its JSON and wall seconds."""
    started = time.perf_counter()
    out = subprocess.run([*DOCSTACK, *args, "--json"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **ENV}, timeout=timeout)
    seconds = time.perf_counter() - started
    if check and out.returncode != 0:
        raise RuntimeError(f"docstack {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return (json.loads(out.stdout) if out.stdout.strip() else None), seconds


def ingest(paths: list[Path], collection: str) -> dict:
    """`docstack ingest` into a collection; the report and its wall time (0 new chunks when the
    files are there already)."""
    report, seconds = cli("ingest", *map(str, paths), "-c", collection)
    report["wall_seconds"] = round(seconds, 1)
    return report


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _cpu_times() -> dict[int, tuple[float, str]]:
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                out[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / ticks, args)
            except (OSError, IndexError, ValueError):
                continue
    return out


def machine(window: float = 2.0) -> dict:
    """What else ran while this benchmark did (2 shared cores make timings move): the load
    averages and the processes that used >= 10% of a core over the last `window` seconds."""
    before = _cpu_times()
    time.sleep(window)
    after = _cpu_times()
    busy = sorted(((after[pid][0] - before[pid][0]) / window, after[pid][1]) for pid in after if pid in before)
    return {"cpus": len(os.sched_getaffinity(0)), "load_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "busy": [f"{share * 100:.0f}% {args[:100]}" for share, args in reversed(busy) if share >= 0.1]}


class Watch:
    """The CPU other processes took while something was timed: the machine's 2 cores are shared,
    and a timing means little without it. /proc is read every second (a process that starts and
    ends in between is seen, one shorter than a second may not be); this process, its children
    and the benchmark's model stack are not 'others'.

        with Watch() as watch: ...
        watch.report  # {"seconds", "others_cores": mean cores used by others, "others": top 3}"""

    def __init__(self, every: float = 1.0):
        self.every = every
        self.report: dict = {}

    def __enter__(self) -> Watch:
        import threading

        self.started = time.monotonic()
        self.first = {pid: cpu for pid, (cpu, _) in _cpu_times().items()}  # CPU before the window
        self.last: dict[int, tuple[float, str]] = {}
        self.mine: set[int] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(self.every):
            self.mine |= _tree(os.getpid()) | _stack_pids()
            self.last.update(_cpu_times())

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.last.update(_cpu_times())
        seconds = time.monotonic() - self.started
        ours = self.mine | _tree(os.getpid()) | _stack_pids()
        used = {pid: cpu - self.first.get(pid, 0.0) for pid, (cpu, _) in self.last.items() if pid not in ours}
        top = sorted(((cpu, self.last[pid][1]) for pid, cpu in used.items() if cpu > 0), reverse=True)[:3]
        self.report = {"seconds": round(seconds, 1), "others_cores": round(sum(used.values()) / seconds, 2),
                       "others": [f"{cpu / seconds:.0%} {args[:90]}" for cpu, args in top if cpu / seconds >= 0.05]}


def _tree(root: int) -> set[int]:
    """`root` and its descendants."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, grew = {root}, True
    while grew:
        new = {pid for pid, parent in parents.items() if parent in found and pid not in found}
        found |= new
        grew = bool(new)
    return found


def _stack_pids() -> set[int]:
    pids = set()
    for path in (Path(ENV["DOCSTACK_HOME"]) / "run").glob("*.pid"):
        try:
            pids |= _tree(int(path.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def model_cpu_seconds() -> float | None:
    """User + system CPU seconds of the model server process (llama.cpp), from /proc."""
    status, _ = cli("status", check=False)
    pid = ((status or {}).get("model") or {}).get("pid")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, TypeError):
        return None


def clear_cached_units(collection: str) -> None:
    """Forget the collection's cached job units, so that the next run really calls the model."""
    from docstack import DocStack

    DocStack().library.index(collection).delete_state("unit")


class Stack:
    """The embedded model stack (`docstack up --no-ui`) on the benchmark's ports: started when
    not running already, and stopped at the end only if this process started it."""

    def __init__(self):
        self.started = False

    def __enter__(self) -> Stack:
        status, _ = cli("status", check=False)
        if not _stack_running(status):
            log("starting the embedded stack (docstack up --no-ui) on ports "
                f"{ENV['DOCSTACK_STACK_PORT']}/{ENV['DOCSTACK_MODEL_PORT']}...")
            out = subprocess.run([*DOCSTACK, "up", "--no-ui"], capture_output=True, text=True, cwd=ROOT,
                                 env={**os.environ, **ENV})
            if out.returncode != 0:
                raise Skip(f"`docstack up --no-ui` failed: {out.stderr.strip()[-500:]}")
            self.started = True
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            subprocess.run([*DOCSTACK, "down"], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ENV})


def _stack_running(status) -> bool:
    if not isinstance(status, dict):
        return False
    stack = status.get("stack") or {}
    model = status.get("model") or {}
    return bool(stack.get("healthy")) and bool(model.get("healthy"))


def emit(name: str, result: dict) -> None:
    """One JSON object on stdout (what run.py reads); the results folder keeps a copy."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"benchmark": name, **result}, indent=2, ensure_ascii=False)
    (RESULTS / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    print(text)


def pdf_lines(path: Path, start: int = 0, stop: int | None = None) -> list[list[str]]:
    """The text of each line of pages [start, stop) (0-based), as the PDF reader reads them."""
    from docstack.ingest.readers.pdf import page_lines

    return [[line.text for line in page] for page in page_lines(path, start, stop)]
