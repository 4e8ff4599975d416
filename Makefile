# Two commands for a fresh machine: `make run` (the workflow on the digits demo) and
# `make test` (linters, then the tests, which include `snakemake --lint` and, where a SLURM
# cluster runs or can be started, the workflow through SLURM).
# Both create .venv and install the package into it when missing or out of date: `run` the
# package alone, `test` (and `slurm`) also its `dev` (and `slurm`) extras.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check

.PHONY: run test check lint slurm bench mutate clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP)-%: pyproject.toml vgg16/_jpeg.c | $(VENV)/bin/python
	$(PIP_INSTALL) -e '.$(if $(filter base,$*),,[$*])'
	touch $@

run: $(STAMP)-base
	$(BIN)/snakemake --cores all
	@echo
	@$(BIN)/python -c "import pandas as pd; print(pd.read_csv('results/summary.csv').to_string(index=False))"
	@echo
	@echo "summary: results/summary.csv; per run: results/runs/<run>/{train,select,eval,plots}/"
	@echo "report: $(BIN)/snakemake --report results/report.html"

lint: $(STAMP)-dev
	$(BIN)/ruff check vgg16 tests bench
	$(BIN)/ruff format --check vgg16 tests bench
	$(BIN)/snakefmt --check Snakefile workflow

# Two pytest-xdist workers, one test module at a time each (tests/conftest.py): most tests
# start processes that leave a core idle (imports, graph compilation, SLURM waits).
PYTEST_PARALLEL := -n 2 --dist loadfile --no-loadscope-reorder

test: lint
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=15

# For iteration: the linters and every test that starts no training, no msrun and no workflow
# (pytest markers `training`, `workflow`, `slurm`), in under 3 minutes on 2 cores.
check: lint
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not training and not workflow and not slurm"

# The SLURM executor plugin, for `snakemake --workflow-profile profiles/slurm` (README).
slurm: $(STAMP)-slurm

# Mutation testing of the modules whose tests are fast (see [tool.mutmut] in pyproject.toml
# and docs/mutation-testing.md); not part of `make test`: it takes over an hour on 2 cores.

mutate: $(STAMP)-dev
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	@$(BIN)/mutmut export-cicd-stats >/dev/null
	@$(BIN)/python -c "import json; s = json.load(open('mutants/mutmut-cicd-stats.json')); \
	print(f\"killed {s['killed']} of {s['total']} mutants ({s['killed'] / s['total']:.1%}); \
	the others: {s['survived']} survived, {s['no_tests']} reached by no test, \
	{s['timeout']} timed out, {s['segfault']} crashed (list: .venv/bin/mutmut results)\")"

bench: $(STAMP)-bench
	$(BIN)/python bench/vs_pytorch.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/prepare_cifar.py
	$(BIN)/python bench/verify_decode.py
	$(BIN)/python bench/input_pipeline.py
	$(BIN)/python bench/distributed.py
	$(BIN)/python bench/fine_tune.py
	$(BIN)/python bench/integrity.py
	$(BIN)/python bench/onnx_inference.py

clean:
	rm -rf $(VENV) results/data results/runs mutants
