"""`docstack extract` on planted items: recall, precision, page accuracy and the model's CPU time.

    .venv/bin/python bench/longdoc/extraction.py [--pages 167-206] [--items 20] [--seed 15]

The document: the text of 40 pages of the Octave manual (PDF pages 167-206 by default, chapters
on expressions and statements) drawn with reportlab into a new PDF, one page per page, with N
invented contract-style obligations planted on N distinct pages chosen with a seeded generator.
Each planted item is one sentence that names a party (an invented company), a date, an amount
and an obligation, e.g. "Under the support agreement, Harrowgate Instruments Ltd shall pay EUR
12,450 to the Octave maintainers no later than 14 March 2025 for the renewal of the annual
support licence." The manual's own text holds no such item.

It goes into its own collection (`docstack ingest`), then through `docstack extract DOC --fields
"party, date, amount, obligation" --json`, on the embedded stack (started on the benchmark's
ports unless it runs there; DOCSTACK_MODEL_ALIAS picks the model, e.g.
qwen2.5-coder-1.5b-instruct, when this starts the stack), after clearing the collection's cached
units so the model really runs. A row matches a planted item when its verbatim quote names the
item's party or amount (or, when it names none, its party field does). Recall: planted items
matched by a row (and, as a diagnostic, the share of planted items among the sentences the
command gave the model at all); precision: rows that match a planted item; page accuracy:
matched items whose row gives the page it was planted on; field accuracy: matched rows whose
party, date, amount and obligation fields hold the planted values (the obligation: its words of
4+ letters), and whose quote is the planted sentence (80% of its words) rather than a fragment
of it (before prompt version extract-3 any fragment found verbatim was kept, a party's name
alone included). Model CPU: user + system seconds of the llama.cpp server process over the run
(/proc), extrapolated to 1,000 pages two ways: in proportion to the pages (what the command did
here, per page), and, as an upper bound, a pass reading every chunk at the CPU per chunk read.
Both assume the model's work grows with the pages; what the command reads grows with the
sentences that hold the fields (`sentences_read`), not with every page."""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import OCTAVE_PDF, ROOT, Skip, Stack, Watch, clear_cached_units, cli, model_cpu_seconds, need  # noqa: E402

COLLECTION = "longdoc-extract"
FIELDS = "party, date, amount, obligation"
PARTIES = ["Harrowgate Instruments Ltd", "Bellweather Analytics GmbH", "Corvina Systems SARL", "Dunmore Optics Inc",
           "Elsinore Data Works", "Fairhaven Robotics LLC", "Glenrock Metrology AG", "Hollins & Pryce Engineering",
           "Ivybridge Signal Labs", "Juniper Fold Software", "Kestrel Marine Surveys", "Larkspur Thermal Ltd",
           "Merriwether Grid Services", "Northcote Acoustics BV", "Oakhurst Biometrics", "Pemberton Rail Controls",
           "Quillfeather Publishing", "Redcliffe Hydrology Oy", "Stanmore Vision AB", "Thornbury Wind Partners",
           "Upwell Cryogenics SA", "Vantry Seismic Ltd", "Wexcombe Fluidics", "Yarrow Lane Instruments"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
OBLIGATIONS = [  # (obligation as the field would hold it, the sentence's clause)
    ("pay the annual support fee",
     "shall pay {amount} to the Octave maintainers no later than {date} as the annual support fee"),
    ("deliver the calibration report",
     "must deliver the signed calibration report and a payment of {amount} by {date}"),
    ("reimburse the test costs", "agrees to reimburse {amount} of test costs to the licensor on or before {date}"),
    ("renew the site licence", "shall renew the site licence for {amount} before {date}"),
    ("fund the training programme", "undertakes to fund the training programme with {amount} by {date}"),
    ("pay the late-delivery penalty", "must pay a late-delivery penalty of {amount} no later than {date}"),
    ("deposit the escrow amount", "shall deposit {amount} into the escrow account by {date}"),
    ("settle the hosting invoice", "agrees to settle the hosting invoice of {amount} on or before {date}"),
]
CURRENCIES = ["EUR", "USD", "GBP", "CHF"]


@dataclass
class Item:
    party: str
    date: str
    amount: str
    obligation: str
    sentence: str
    page: int  # page of the planted PDF (1-based)


def plant(n: int, pages: int, rng: random.Random) -> list[Item]:
    if n > min(len(PARTIES), pages):
        raise Skip(f"at most {min(len(PARTIES), pages)} planted items on {pages} pages")
    where = sorted(rng.sample(range(1, pages + 1), n))
    parties = rng.sample(PARTIES, n)
    items = []
    for k, (party, page) in enumerate(zip(parties, where)):
        date = f"{rng.randint(1, 28)} {MONTHS[rng.randrange(12)]} {rng.choice([2024, 2025, 2026])}"
        amount = f"{rng.choice(CURRENCIES)} {rng.randint(11, 98)},{rng.randint(100, 999)}"
        obligation, clause = OBLIGATIONS[k % len(OBLIGATIONS)]
        opener = rng.choice(["Under the support agreement, ", "Under clause {c} of the services contract, ",
                             "As agreed in the licence schedule, ", ""]).format(c=rng.randint(3, 19))
        sentence = f"{opener}{party} {clause.format(amount=amount, date=date)}."
        items.append(Item(party, date, amount, obligation, sentence[0].upper() + sentence[1:], page))
    return items


def write_pdf(path: Path, pages: list[list[str]], items: list[Item], rng: random.Random) -> None:
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    _, height = letter
    pdf = canvas.Canvas(str(path), pagesize=letter)
    planted = {item.page: item for item in items}
    for number, lines in enumerate(pages, start=1):
        lines = list(lines)
        if number in planted:  # between two lines of the page's body, away from its edges
            at = rng.randint(min(4, len(lines)), max(min(4, len(lines)), len(lines) - 3))
            lines[at:at] = [planted[number].sentence]
        wrapped = [piece for line in lines for piece in (textwrap.wrap(line, 110) or [""])]
        size = min(9.0, (height - 90) / (max(1, len(wrapped)) * 1.25))
        y = height - 50
        pdf.setFont("Helvetica", size)
        for piece in wrapped:
            pdf.drawString(50, y, piece)
            y -= size * 1.25
        pdf.showPage()
    pdf.save()


def _flat(text: str) -> str:
    return " ".join(str(text or "").split()).casefold()


def same_date(planted: str, said) -> bool:
    """'23 November 2025' said as written, as 2025-11-23, 23/11/2025 or November 23, 2025."""
    day, month, year = planted.split()
    number = MONTHS.index(month) + 1
    words = re.findall(r"\d+|[a-z]+", str(said or "").lower())
    return (year in words and (month.lower() in words or str(number) in words or f"{number:02}" in words)
            and (day in words or f"{int(day):02}" in words))


def _words(text) -> set[str]:
    """Words of 4+ letters, their first five letters ('reimburse' matches 'reimbursement')."""
    return {w[:5] for w in re.findall(r"[a-z]{4,}", str(text or "").lower())}


def _digits(text: str) -> str:
    return re.sub(r"\D", "", str(text or ""))


def matched_items(row: dict, items: list[Item]) -> list[int]:
    """The planted items a row stands for: those its verbatim quote names (by party or amount);
    when the quote names none, the one its party field names."""
    quote = _flat(row.get("quote"))
    named = [k for k, i in enumerate(items) if _flat(i.party) in quote or _flat(i.amount) in quote]
    if named:
        return named
    party = _flat(row.get("party"))
    return [k for k, i in enumerate(items) if party and _flat(i.party.split()[0]) in party]


def read_by_the_command(pdf: Path, items: list[Item]) -> float:
    """The share of planted items whose sentence is among those the command gives the model
    (docstack.analysis.extract._candidates, with the search DocStack.extract uses). No row can
    come from a sentence the model never read."""
    from docstack import DocStack
    from docstack.analysis.documents import find
    from docstack.analysis.extract import _candidates, parse_fields

    ds = DocStack()
    index = ds.library.index(COLLECTION)
    doc = find(index, pdf.name, COLLECTION)

    def search(query, k, filters):
        return [hit.chunk_id for hit in ds.library.search(query, COLLECTION, k, None, filters)]

    read = [_flat(sentence) for _, sentence in _candidates(index, search, doc.path, doc.source,
                                                            parse_fields(FIELDS))[0]]
    return round(sum(any(_flat(i.party) in text for text in read) for i in items) / len(items), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", default="167-206", help="PDF pages of the Octave manual to copy")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    first, last = map(int, args.pages.split("-"))
    rng = random.Random(args.seed)
    work = ROOT / "build" / "longdoc" / "extract"
    work.mkdir(parents=True, exist_ok=True)
    pdf = work / f"planted-octave-{first}-{last}-{args.items}-{args.seed}.pdf"
    try:
        need(OCTAVE_PDF)
        from common import pdf_lines as page_lines

        source = page_lines(OCTAVE_PDF, first - 1, last)
        items = plant(args.items, len(source), rng)
        write_pdf(pdf, source, items, rng)
        report = common.ingest([pdf], COLLECTION)
        with Stack():
            clear_cached_units(COLLECTION)
            cpu = model_cpu_seconds()
            with Watch() as watch:
                result, seconds = cli("extract", pdf.name, "-c", COLLECTION, "--fields", FIELDS, timeout=3600)
            cpu_after = model_cpu_seconds()
            machine = common.machine()
    except Skip as exc:
        common.emit("extraction", {"skipped": str(exc)})
        return
    rows = result["rows"]
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / f"extraction-rows-{result['model'].rsplit('/', 1)[-1]}.json").write_text(json.dumps(
        {"planted": [vars(i) for i in items], "result": result}, indent=1, ensure_ascii=False) + "\n")
    matched = {}  # item index -> rows
    good_rows = 0
    for row in rows:
        hits = matched_items(row, items)
        good_rows += bool(hits)
        for k in hits:
            matched.setdefault(k, []).append(row)
    on_page = sum(any(r["page"] == items[k].page for r in found) for k, found in matched.items())

    def field_share(check) -> float | None:
        pairs = [(items[k], r) for k, found in matched.items() for r in found]
        return round(sum(check(i, r) for i, r in pairs) / len(pairs), 3) if pairs else None

    from docstack import DocStack

    chunks = DocStack().collections()[COLLECTION].chunks
    model_cpu = round(cpu_after - cpu, 1) if cpu is not None and cpu_after is not None else None
    pages = len(source)
    alias = result["model"].rsplit("/", 1)[-1]
    common.emit("extraction" if alias == "qwen2.5-0.5b-instruct" else f"extraction-{alias}", {
        "document": f"{pdf.name}: {pages} pages of {OCTAVE_PDF.name} ({args.pages}) with {len(items)} planted items, "
                    f"{chunks} chunks", "ingest_seconds": report["wall_seconds"],
        "model": result["model"], "rows": len(rows), "dropped_rows": result["dropped"],
        "chunks_read": result["chunks_read"], "sentences_read": result.get("sentences_read"),
        "model_calls": result["model_calls"],
        "recall": round(len(matched) / len(items), 3),
        "recall_ceiling_passages_read": read_by_the_command(pdf, items),
        "precision": round(good_rows / len(rows), 3) if rows else None,
        "page_accuracy": round(on_page / len(matched), 3) if matched else None,
        "field_accuracy": {
            "party": field_share(lambda i, r: _flat(i.party.split()[0]) in _flat(r.get("party"))),
            "date": field_share(lambda i, r: same_date(i.date, r.get("date"))),
            "amount": field_share(lambda i, r: _digits(i.amount) in _digits(r.get("amount"))),
            "obligation": field_share(lambda i, r: _words(i.obligation) <= _words(r.get("obligation"))),
            "quote_is_the_sentence": field_share(lambda i, r: len(_words(i.sentence) & _words(r["quote"]))
                                                 >= 0.8 * len(_words(i.sentence)))},
        "missed": [{"page": i.page, "sentence": i.sentence} for k, i in enumerate(items) if k not in matched],
        "wrong_rows": [{"page": r["page"], "quote": r["quote"][:160]} for r in rows
                       if not matched_items(r, items)][:10],
        "wall_seconds": round(seconds, 1), "model_cpu_seconds": model_cpu,
        "model_cpu_minutes_per_1000_pages_proportional": round(model_cpu / pages * 1000 / 60, 1) if model_cpu
        else None,
        "model_cpu_minutes_per_1000_pages_every_chunk": round(model_cpu / result["chunks_read"] * chunks / pages
                                                              * 1000 / 60, 1)
        if model_cpu and result["chunks_read"] else None,
        "targets": {"recall": ">= 0.9", "precision": ">= 0.9", "page_accuracy": ">= 0.95",
                    "cpu_minutes_per_1000_pages": "<= 10"},
        "others_during": watch.report, "machine": machine})


if __name__ == "__main__":
    main()
