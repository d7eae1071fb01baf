# Install order matters: the CPU torch pin goes in first so no requirement pulls a CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
export TMPDIR := $(CURDIR)/.tmp
export GNNREC_DATA ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: install quickstart test test-fast test-dgl dgl-env bench clean

$(BIN)/python:
	mkdir -p $(TMPDIR)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev,text]'

# The README's main job: benchmark suite `quickstart` (baselines vs LightGCN on the embedded
# synthetic log, 2 seeds). --resume: a second call re-prints the table from the finished cells.
quickstart: install
	$(BIN)/gnnrec bench benchmarks/suites/quickstart.yaml --out runs/quickstart --resume

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q --durations=15

test-fast: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q -m "not slow and not realdata"

# DGL backend: a second venv (torch 2.2.1, numpy<2, dgl 2.1.0; see scripts/dgl_env.sh), then
# only the tests marked `dgl`. GNNREC_REQUIRE_DGL=1 makes a missing DGL fail instead of skip.
DGL_VENV ?= .venv-dgl

dgl-env:
	DGL_VENV=$(DGL_VENV) bash scripts/dgl_env.sh

test-dgl: dgl-env
	GNNREC_REQUIRE_DGL=1 $(DGL_VENV)/bin/python -m pytest -q -m dgl

bench: install
	$(BIN)/python benchmarks/ingest_throughput.py

clean:
	rm -rf $(VENV) $(DGL_VENV) .tmp runs build *.egg-info
