"""What the Analyze page shows, from the JSON that `DocStack.outline`, `mentions`, `summarize`,
`extract` and `compare` return: page references with printed labels, the outline's entries,
table rows. No Streamlit here, so it is tested without a browser."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from docstack import Job, page_reference

INDENT = "\u2003"  # an em space: Markdown keeps it where it strips leading ordinary spaces
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def page_text(page: int | None, label: str | None = None) -> str:
    """A PDF page with its printed label where it differs ("p. 17 (printed 1)")."""
    return page_reference(page, label, "p.")


def pages_text(first: int | None, last: int | None, first_label: str | None = None,
               last_label: str | None = None) -> str:
    """A page range with its printed labels where they differ ("pp. 17–19 (printed 1–3)")."""
    if first is None:
        return ""
    if last is None or last == first:
        return page_text(first, first_label)
    if not ((first_label and first_label != str(first)) or (last_label and last_label != str(last))):
        return f"pp. {first}–{last}"
    if last_label is None:  # the last page's label is not known: say only where the printed pages start
        return f"pp. {first}–{last} (printed from {first_label})"
    return f"pp. {first}–{last} (printed {first_label or first}–{last_label})"


def one_line(error: BaseException | str) -> str:
    """An error as the one line the page shows (never a traceback)."""
    return " ".join(str(error).split()) or type(error).__name__


def escape_markdown(text: str) -> str:
    """Text shown literally where Streamlit reads Markdown (button labels, captions)."""
    return _MARKDOWN.sub(r"\\\1", text)


@dataclass(frozen=True)
class Entry:
    """One section of the outline as the page lists it."""

    index: int  # the section's position in the outline: what the page remembers as picked
    title: str
    level: int
    first: int | None
    last: int | None
    pages: str  # "p. 17 (printed 1)"; the first page, as a table of contents gives it
    span: str  # "pp. 17–19 (printed 1–3)"; all its pages

    def label(self, picked: bool = False) -> str:
        """The entry's button label: indented by level, its first page after the title."""
        title = escape_markdown(self.title)
        title = f"**{title}**" if picked else title
        return INDENT * 2 * (self.level - 1) + title + (f" · {escape_markdown(self.pages)}" if self.pages else "")


def outline_entries(outline: dict, wanted: str = "") -> list[Entry]:
    """The outline's sections in document order (those whose title holds `wanted`, if given)."""
    entries = []
    needle = wanted.strip().casefold()
    for i, s in enumerate(outline["sections"]):
        if needle and needle not in s["title"].casefold():
            continue
        last = s.get("end_page") or s["page"]
        entries.append(Entry(i, s["title"], max(1, s["level"]), s["page"], last,
                             page_text(s["page"], s["page_label"]),
                             pages_text(s["page"], last, s["page_label"], label_of(outline, last, s))))
    return entries


def label_of(outline: dict, page: int | None, near: dict | None = None) -> str | None:
    """A page's printed label as far as the outline tells it: the label of a section starting on
    it, else counted on from `near` (a section before it) where that one's label is a number."""
    if page is None:
        return None
    for s in outline["sections"]:
        if s["page"] == page and s["page_label"]:
            return s["page_label"]
    if near and near["page"] is not None and (near["page_label"] or "").isdigit():
        return str(int(near["page_label"]) + page - near["page"])
    return None


def summary_target(outline: dict, index: int) -> dict:
    """The `DocStack.summarize` arguments for the section at `index`: its title where no other
    section has the same one (summaries are then titled by it), else its pages."""
    sections = outline["sections"]
    chosen = sections[index]
    wanted = " ".join(chosen["title"].split()).casefold()
    same = [s for s in sections if s["title"].casefold() == wanted]
    if len(same) == 1 or chosen["page"] is None:
        return {"section": chosen["title"]}
    return {"pages": (chosen["page"], chosen.get("end_page") or chosen["page"])}


def sentence_pages(sentence: dict) -> str:
    """Where a summary sentence rests: its pages with printed labels, or that no page holds it."""
    labels = sentence.get("page_labels") or [None] * len(sentence["pages"])
    where = ", ".join(page_text(p, label) for p, label in zip(sentence["pages"], labels))
    if not sentence["supported"]:
        return (where + " · " if where else "") + "not found on the pages"
    return where or "no page"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_footer(result: dict) -> str:
    return (f"{result['model']} · {plural(result['units'], 'unit')}, {plural(result['model_calls'], 'model call')}, "
            f"{result['cached_units']} cached · {result['seconds']} s")


def mention_rows(result: dict, with_document: bool = False) -> list[dict]:
    """The mentions table: exact occurrences in document order, then related passages."""
    rows = []
    for m in result["mentions"]:
        row = {"document": m["source"].rsplit("/", 1)[-1]} if with_document else {}
        rows.append({**row, "page": m["page"], "printed page": m["page_label"] or "", "section": m["section"] or "",
                     "match": m["match"], "quote": m["quote"]})
    return rows


def mentions_heading(result: dict) -> str:
    count = result["count"]
    related = sum(m["match"] == "related" for m in result["mentions"])
    text = f"{plural(count, 'mention')} of “{result['term']}”"
    return text + (f", and {plural(related, 'related passage')} in other words" if related else "")


def extraction_rows(result: dict) -> list[dict]:
    return [{**{f: row.get(f) for f in result["fields"]}, "page": row["page"],
             "printed page": row["page_label"] or "", "section": row["section"] or "", "quote": row["quote"]}
            for row in result["rows"]]


def extraction_footer(result: dict) -> str:
    return (f"{len(result['rows'])} rows from {result['chunks_read']} passages; {result['dropped']} dropped "
            f"(quote not found in the text) · {result['seconds']} s")


def compare_counts(result: dict) -> str:
    return (f"{len(result['added'])} added, {len(result['removed'])} removed, {len(result['changed'])} changed, "
            f"{result['unchanged']} unchanged")


def change_pages(change: dict, side: str) -> str:
    first, last = change[f"{side}_pages"]
    labels = change.get(f"{side}_page_labels") or [None, None]
    return pages_text(first, last, *labels)


def part_pages(part: dict) -> str:
    first, last = part["pages"]
    labels = part.get("page_labels") or [None, None]
    return pages_text(first, last, *labels)


def eta_text(seconds: float | None) -> str:
    if not seconds:
        return ""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"


def progress(job: Job | None, now: float | None = None) -> tuple[float, str]:
    """A job's progress bar: its share done and its line ("2 of 5 units · about 40 s left"; the
    time so far until a unit has finished and the ETA is known)."""
    if job is None or not job.total:
        return 0.0, "starting…"
    text = f"{job.done} of {plural(job.total, 'unit')}"
    if job.cached:
        text += f" ({job.cached} cached)"
    if job.cancel and job.state in ("running", "queued"):
        text += " · cancelling after the unit in flight"
    elif eta := eta_text(job.eta_seconds):
        text += f" · {eta}"
    elif job.done < job.total:
        text += f" · {max(0, round((now or time.time()) - job.started))} s so far"
    return min(1.0, job.done / job.total), text
