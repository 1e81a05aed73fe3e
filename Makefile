# `make demo` and `make test` do all set-up on a fresh machine (Python 3.12+ needed).
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test bench down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "docstack needs Python 3.12 or newer: set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: install
	$(BIN)/docstack demo

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/bench_spine.py

down:
	$(BIN)/docstack down

clean:
	-$(BIN)/docstack down
	rm -rf $(VENV)
