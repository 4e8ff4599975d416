# Two commands for a fresh machine: `make run` (the workflow on the digits demo) and
# `make test` (linters, then the tests, which include `snakemake --lint`).
# Both create .venv and install the package into it when missing or out of date.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench mutate clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/snakemake --cores all
	@echo
	@$(BIN)/python -c "import pandas as pd; print(pd.read_csv('results/summary.csv').to_string(index=False))"
	@echo
	@echo "summary: results/summary.csv; per run: results/runs/<run>/{train,select,eval,plots}/"
	@echo "report: $(BIN)/snakemake --report results/report.html"

lint: $(STAMP)
	$(BIN)/ruff check vgg16 tests bench
	$(BIN)/ruff format --check vgg16 tests bench
	$(BIN)/snakefmt --check Snakefile workflow

test: lint
	$(BIN)/pytest

# Mutation testing of the modules whose tests are fast (see [tool.mutmut] in pyproject.toml
# and docs/mutation-testing.md); not part of `make test`: it takes about 13 minutes on 2 cores.
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	@$(BIN)/mutmut export-cicd-stats >/dev/null
	@$(BIN)/python -c "import json; s = json.load(open('mutants/mutmut-cicd-stats.json')); \
	print(f\"killed {s['killed']} of {s['total']} mutants ({s['killed'] / s['total']:.1%}); \
	the others: {s['survived']} survived, {s['no_tests']} reached by no test, \
	{s['timeout']} timed out, {s['segfault']} crashed (list: .venv/bin/mutmut results)\")"

bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python bench/vs_pytorch.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/prepare_cifar.py
	$(BIN)/python bench/verify_decode.py
	$(BIN)/python bench/determinism.py
	$(BIN)/python bench/distributed.py

clean:
	rm -rf $(VENV) results/data results/runs mutants
