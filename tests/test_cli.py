"""The `docstack` command as users and checks run it: real process, real files, real index."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.pdfs import write_manual_and_notes


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = write_manual_and_notes(tmp_path_factory.mktemp("corpus"))
    return root


def test_ingest_search_and_errors(tmp_path, corpus):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 truncated")
    result = run_cli(["ingest", str(corpus), str(bad), "--json"], tmp_path / "home")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"files", "chunks", "pages", "errors", "seconds"}
    assert (report["files"], report["pages"]) == (2, 3)
    assert report["chunks"] >= 3
    assert [e["path"] for e in report["errors"]] == [str(bad)]
    assert result.stderr == ""

    result = run_cli(["search", "how often is the pump serviced", "-k", "2", "--json"], tmp_path / "home")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 2
    assert set(hits[0]) == {"chunk_id", "source", "page", "section", "score", "text", "page_label"}
    assert hits[0]["source"] == str(corpus / "manual.pdf") and hits[0]["page"] == 2
    assert hits[0]["score"] >= hits[1]["score"]

    again = json.loads(run_cli(["ingest", str(corpus), "--json"], tmp_path / "home").stdout)
    assert (again["files"], again["chunks"], again["unchanged"]) == (0, 0, 2)


def test_nothing_ingested_exits_2(tmp_path):
    result = run_cli(["ingest", str(tmp_path / "missing"), "--json"], tmp_path / "home")
    assert result.returncode == 2
    assert json.loads(result.stdout)["errors"][0]["error"] == "no such file or directory"


def test_ask_without_a_stack_is_one_clear_line(tmp_path, corpus):
    run_cli(["ingest", str(corpus / "notes.md")], tmp_path / "home")
    result = run_cli(["ask", "What is served on Fridays?"], tmp_path / "home")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "docstack up" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_greeting_is_greeted_back_without_a_stack(tmp_path, corpus):
    run_cli(["ingest", str(corpus / "notes.md")], tmp_path / "home")
    result = run_cli(["ask", "Hi there!"], tmp_path / "home")  # no model, no search: no stack needed
    assert result.returncode == 0, result.stderr
    reply, timing = result.stdout.strip().splitlines()
    assert reply.startswith("Hello!") and re.fullmatch(r"\d+\.\ds", timing), result.stdout  # no empty model name
    assert "small talk" in result.stderr


def test_unknown_collection_is_one_clear_line(tmp_path):
    result = run_cli(["search", "x", "--collection", "nope"], tmp_path / "home")
    assert result.returncode != 0
    assert "collection 'nope' does not exist" in result.stderr and "Traceback" not in result.stderr


def test_status_json_names_the_ui_the_stack_and_the_profile(tmp_path):
    result = run_cli(["status", "--json"], tmp_path / "home")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["profile"] == "embedded"
    assert info["ui"]["url"].startswith("http://127.0.0.1:") and info["ui"]["running"] is False
    assert info["stack"]["url"].startswith("http://127.0.0.1:") and info["stack"]["healthy"] is False
