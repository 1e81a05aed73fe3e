"""`docstack compare` on synthetic edits of a manual: changed-section F1.

    .venv/bin/python bench/longdoc/compare.py [--pages 17-400] [--k 10] [--renames 3] [--moves 3] [--seed 15]

Version 1 is the Octave manual's text (PDFium, PDF pages 17-400 by default: its preface and first
chapters) as Markdown, each PDF bookmark a heading at its level where its title line is found on
its page (else at the top of the next page), body lines kept as they are (a code line that starts
with '#' is escaped so it stays body). Version 2 is version 1 with, on distinct sections chosen
with a seeded generator: k leaf sections deleted; k new sections added (invented titles over
paragraphs of the gnuplot manual, another program's documentation), each before a section of its
level; k sections edited (one sentence reworded, and in every other one a sentence added);
`--renames` sections renamed (body unchanged); `--moves` sections moved to another chapter
(title and body unchanged, so not a change).

Both go into their own collection with `docstack ingest` and through `docstack compare v1 v2
--json`. Expected: the deleted sections as removed, the new ones as added, the edited and renamed
ones as changed (a rename by its new title); nothing else. Precision, recall and F1 per kind
(by title) and over all three together (micro); the moved sections are reported apart (a move
named as any change counts as a false positive in the overall score too)."""

from __future__ import annotations

import argparse
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import GNUPLOT_PDF, OCTAVE_PDF, ROOT, Skip, cli, log, need  # noqa: E402

COLLECTION = "longdoc-compare"
_RUNNING = re.compile(r"^(?:\d+ GNU Octave \(version [\d.]+\)|Chapter \d+: .+ \d+|Appendix [A-Z]: .+ \d+|\d+"
                      r"|[ivxlc]+)$")
RENAMES = ["More on {t}", "{t} in Practice", "Working with {t}", "{t}, Revisited", "Notes on {t}"]
NEW_TITLES = ["Plotting Through an External Program", "Terminal Selection", "Axis Ticks From Data",
              "Batch Rendering of Figures", "Color Maps for Print", "Fitting Curves Interactively",
              "Exporting Plots to Documents", "Label Placement Rules", "Multiplot Layouts", "Data File Formats",
              "Style Defaults", "Font Handling in Output", "Mouse Input in Plots", "Histograms From Raw Data",
              "Animated Output", "Polar Coordinates", "Error Bars From Columns", "Output Encodings",
              "Time Series Axes", "Contour Levels"]


@dataclass
class Part:
    title: str
    level: int
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "#" * min(6, self.level) + " " + self.title + "\n\n" + "\n".join(self.lines).strip() + "\n"

    def sentences(self) -> list[tuple[int, int, int]]:
        """(line, start, end) of sentences that end on their line: safe places to edit."""
        out = []
        for n, line in enumerate(self.lines):
            for m in re.finditer(r"(?:^|(?<=\. ))([A-Z][^.]{30,200}\.)(?= |$)", line):
                out.append((n, m.start(1), m.end(1)))
        return out


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def manual_parts(first: int, last: int) -> list[Part]:
    """The manual's pages [first, last] as sections: each bookmark starts one at its title's line."""
    from common import pdf_lines as page_lines

    outline, _ = cli("outline", OCTAVE_PDF.name, "-c", "octave")
    marks = [s for s in outline["sections"] if first <= s["page"] <= last]
    parts = [Part("(front)", 1)]
    j = 0
    for page, lines in enumerate(page_lines(OCTAVE_PDF, first - 1, last), start=first):
        for n, line in enumerate(lines):
            while j < len(marks) and marks[j]["page"] < page:  # title line not found on its page
                parts.append(Part(marks[j]["title"], marks[j]["level"]))
                j += 1
            if j < len(marks) and marks[j]["page"] == page and _norm(line).endswith(_norm(marks[j]["title"])) \
                    and len(line) <= len(marks[j]["title"]) + 12:
                parts.append(Part(marks[j]["title"], marks[j]["level"]))
                j += 1
                continue
            if n in (0, len(lines) - 1) and _RUNNING.match(line):
                continue  # running header or page number
            if line.lstrip().startswith(("#", "```", "~~~")):
                line = "\\" + line.lstrip()
            parts[-1].lines.append(line)
    return [p for p in parts if p.title != "(front)" or p.lines]


def gnuplot_paragraphs(n: int, rng: random.Random) -> list[list[str]]:
    from common import pdf_lines as page_lines

    need(GNUPLOT_PDF)
    pages = [lines for lines in page_lines(GNUPLOT_PDF, 20, 200) if len(lines) > 25]
    chosen = rng.sample(pages, n)
    return [[("\\" + x if x.startswith("#") else x) for x in lines[2:22]] for lines in chosen]


def edit(parts: list[Part], k: int, renames: int, moves: int, seed: int) -> tuple[list[Part], dict]:
    rng = random.Random(seed)
    titles = [p.title for p in parts]
    unique = {t for t in titles if titles.count(t) == 1}
    leaf = [i for i, p in enumerate(parts) if p.title in unique and p.level >= 2 and len(p.sentences()) >= 2
            and (i + 1 == len(parts) or parts[i + 1].level <= p.level)]
    if len(leaf) < 3 * k + renames + moves:
        raise Skip(f"only {len(leaf)} leaf sections to edit; pass a wider --pages or a smaller --k")
    picks = rng.sample(leaf, 2 * k + renames + moves)
    deleted, edited = picks[:k], picks[k:2 * k]
    renamed, moved = picks[2 * k:2 * k + renames], picks[2 * k + renames:]
    new = [Part(p.title, p.level, list(p.lines)) for p in parts]
    truth = {"removed": {parts[i].title for i in deleted}, "changed": set(), "added": set(), "moved": set()}
    for n, i in enumerate(edited):
        part = new[i]
        line, start, end = rng.choice(part.sentences())
        sentence = part.lines[line][start:end]
        reworded = sentence[:-1] + ", except where an older release behaves otherwise."
        part.lines[line] = part.lines[line][:start] + reworded + part.lines[line][end:]
        if n % 2:
            part.lines.append("This behaviour is new in version 2 of this manual and may change again.")
        truth["changed"].add(part.title)
    for n, i in enumerate(renamed):
        old = new[i].title
        new[i].title = RENAMES[n % len(RENAMES)].format(t=old)
        truth["changed"].add(new[i].title)
    # Insertions and deletions by identity, so that indices chosen above stay valid.
    gone = {id(new[i]) for i in deleted}
    moving = [new[i] for i in moved]
    gone |= {id(p) for p in moving}
    anchors = rng.sample([i for i, p in enumerate(new) if p.level >= 2 and id(p) not in gone
                          and i not in edited and i not in renamed], k + moves)
    inserts: dict[int, list[Part]] = {}
    for n, (i, body) in enumerate(zip(anchors[:k], gnuplot_paragraphs(k, rng))):
        title = NEW_TITLES[n % len(NEW_TITLES)] + ("" if n < len(NEW_TITLES) else f" {n}")
        inserts.setdefault(id(new[i]), []).append(Part(title, new[i].level, body))
        truth["added"].add(title)
    for part, i in zip(moving, anchors[k:]):
        part.level = new[i].level  # a sibling of where it lands
        inserts.setdefault(id(new[i]), []).append(part)
        truth["moved"].add(part.title)
    out = []
    for p in new:
        out += inserts.get(id(p), [])
        if id(p) not in gone:
            out.append(p)
    return out, truth


def f1(expected: set, found: set) -> dict:
    tp = len(expected & found)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(expected) if expected else 1.0
    return {"expected": len(expected), "found": len(found), "correct": tp, "precision": round(precision, 3),
            "recall": round(recall, 3), "f1": round(2 * precision * recall / (precision + recall), 3)
            if precision + recall else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", default="17-400", help="PDF pages of the Octave manual in version 1")
    parser.add_argument("--k", type=int, default=10, help="sections deleted, added and edited (each)")
    parser.add_argument("--renames", type=int, default=3)
    parser.add_argument("--moves", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    try:
        need(OCTAVE_PDF)
        common.ingest([OCTAVE_PDF], "octave")  # the outline comes from the ingested manual
        first, last = map(int, args.pages.split("-"))
        parts = manual_parts(first, last)
        v2, truth = edit(parts, args.k, args.renames, args.moves, args.seed)
    except Skip as exc:
        common.emit("compare", {"skipped": str(exc)})
        return
    work = ROOT / "build" / "longdoc" / "compare"
    work.mkdir(parents=True, exist_ok=True)
    a, b = work / "octave-v1.md", work / "octave-v2.md"
    a.write_text("\n".join(p.text() for p in parts), encoding="utf-8")
    b.write_text("\n".join(p.text() for p in v2), encoding="utf-8")
    report = common.ingest([a, b], COLLECTION)
    log(f"compare: ingested {report['chunks']} chunks in {report['wall_seconds']}s")
    result, seconds = cli("compare", a.name, b.name, "-c", COLLECTION)
    found = {"added": {s["title"] for s in result["added"]}, "removed": {s["title"] for s in result["removed"]},
             "changed": {c["title"] for c in result["changed"]}}
    scores = {kind: f1(truth[kind], found[kind]) for kind in ("added", "removed", "changed")}
    everything = f1({(k, t) for k in found for t in truth[k]}, {(k, t) for k in found for t in found[k]})
    wrong = {kind: sorted(found[kind] - truth[kind]) for kind in found}
    missed = {kind: sorted(truth[kind] - found[kind]) for kind in found}
    common.emit("compare", {
        "document": f"{OCTAVE_PDF.name} PDF pages {args.pages} as Markdown ({len(parts)} sections, "
                    f"{sum(len(p.text().split()) for p in parts):,} words)",
        "edits": {"deleted": args.k, "added": args.k, "edited": args.k, "renamed": args.renames,
                  "moved": args.moves, "seed": args.seed},
        "sections": result["sections"], **scores, "overall": everything,
        "moved_reported": sorted(t for t in truth["moved"] if any(t in found[k] for k in found)),
        "false_positives": wrong, "missed": missed, "compare_wall_seconds": round(seconds, 2),
        "ingest_seconds": report["wall_seconds"], "target": "F1 >= 0.95", "machine": common.machine()})


if __name__ == "__main__":
    main()
