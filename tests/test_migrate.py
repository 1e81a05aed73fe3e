"""`docstack migrate --to postgresql://...`: a collection ingested into SQLite by the real CLI is
copied to PostgreSQL, vectors and verdicts as stored, and searching it there finds the same."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.pdfs import write_pdf


def test_migrate_then_search_postgres_finds_the_same(tmp_path, postgres_url):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_pdf(corpus / "manual.pdf", ["Chapter one explains how to unpack the device and check the parts list.",
                                      "The Zephyr-9 pump must be serviced every 42 days by the maintenance crew."])
    (corpus / "notes.md").write_text("# Notes\n\n## Lunch\n\nThe canteen serves soup on Fridays.\n\n"
                                     "## Parking\n\nVisitors park behind building C after signing in.\n")
    (corpus / "safety.txt").write_text("Wear gloves when handling the valve assembly. Eye protection is required.")
    home = tmp_path / "home"
    ingest = run_cli(["ingest", str(corpus), "--collection", "docs", "--json"], home)
    assert ingest.returncode == 0, ingest.stderr
    ingested = json.loads(ingest.stdout)

    moved = run_cli(["migrate", "--to", postgres_url, "--collection", "docs", "--json"], home)
    assert moved.returncode == 0, moved.stderr
    report = json.loads(moved.stdout)
    assert (report["documents"], report["chunks"], report["unchanged"]) == (3, ingested["chunks"], 0)
    again = json.loads(run_cli(["migrate", "--to", postgres_url, "--collection", "docs", "--json"], home).stdout)
    assert (again["documents"], again["unchanged"]) == (0, 3), "a second run copies nothing"

    for query in ("how often is the pump serviced", "valve gloves"):
        search = ["search", query, "--collection", "docs", "-k", "3", "--json"]
        before = json.loads(run_cli(search, home).stdout)
        after = run_cli(search, home, DOCSTACK_INDEX_URL=postgres_url)
        assert after.returncode == 0, after.stderr
        found = json.loads(after.stdout)
        assert [(h["source"], h["page"], h["text"]) for h in found] == [
            (h["source"], h["page"], h["text"]) for h in before], query
        assert [h["score"] for h in found] == [h["score"] for h in before]  # the same vectors
    listed = json.loads(run_cli(["collections", "--json"], home, DOCSTACK_INDEX_URL=postgres_url).stdout)
    assert listed["docs"]["documents"] == 3 and listed["docs"]["chunks"] == ingested["chunks"]
    outline = ["outline", "notes.md", "--collection", "docs", "--json"]  # the structure went too
    assert json.loads(run_cli(outline, home, DOCSTACK_INDEX_URL=postgres_url).stdout) == json.loads(
        run_cli(outline, home).stdout)


def test_migrate_to_nowhere_is_one_line(tmp_path):
    result = run_cli(["migrate", "--to", "postgresql://nobody:pw@127.0.0.1:9/none"], tmp_path / "home")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect" in lines[0] and "pw@" not in lines[0], result.stderr
