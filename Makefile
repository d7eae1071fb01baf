# Install order matters: the CPU torch pin goes in first so no requirement pulls a CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
export TMPDIR := $(CURDIR)/.tmp
export GNNREC_DATA ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: install quickstart test test-fast bench clean

$(BIN)/python:
	mkdir -p $(TMPDIR)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'

quickstart: install
	$(BIN)/gnnrec run experiments/quickstart.yaml

test: install
	$(BIN)/python -m pytest -n 2 -q

test-fast: install
	$(BIN)/python -m pytest -n 2 -q -m "not slow and not realdata"

bench: install
	$(BIN)/python benchmarks/ingest_throughput.py

clean:
	rm -rf $(VENV) .tmp runs build *.egg-info
