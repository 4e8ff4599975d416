# Two commands for a fresh machine: `make run` (the digits demo end to end) and `make test`.
# Both create .venv and install the package into it when missing or out of date.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA := results/data/digits
RUN := results/runs/digits

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/vgg16 prepare --dataset digits --data_path $(DATA)/raw --output $(DATA)/mindrecord
	$(BIN)/vgg16 train --dataset digits --data_path $(DATA)/mindrecord --ckpt_path $(RUN)/train/ckpt
	$(BIN)/vgg16 select --dataset digits --data_path $(DATA)/mindrecord \
		--ckpt_path $(RUN)/train/ckpt --output $(RUN)/select
	$(BIN)/vgg16 eval --dataset digits --data_path $(DATA)/mindrecord \
		--pre_trained $(RUN)/select/best.ckpt --output $(RUN)/eval
	@echo "metrics: $(RUN)/eval/metrics.json (confusion matrix: $(RUN)/eval/confusion.csv)"

lint: $(STAMP)
	$(BIN)/ruff check vgg16 tests bench
	$(BIN)/ruff format --check vgg16 tests bench

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/prepare_cifar.py

clean:
	rm -rf $(VENV) results/data results/runs
