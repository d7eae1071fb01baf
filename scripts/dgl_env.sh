#!/usr/bin/env bash
# Build the second environment for the DGL backend: .venv-dgl (or $DGL_VENV).
#
# DGL's newest Linux wheel (2.1.0) only imports with torch <= 2.2.1 (its graphbolt library
# is built per torch version; see ../shared/ENVIRONMENT.md), so the DGL path lives in its own
# venv: torch 2.2.1, numpy<2, dgl 2.1.0, torchdata 0.7.1 plus DGL's undeclared dependencies
# (packaging, pandas), then gnnrec itself (editable, with the dev and dgl extras). A
# constraints file keeps pip from swapping torch or numpy while resolving the project.
#
# torch 2.2.1 on PyPI is the CUDA build: ~2.8 GB download, ~5 GB on disk.
# Idempotent: exits at once when the venv already imports dgl and this checkout's gnnrec.
#
# Usage: bash scripts/dgl_env.sh        (env: DGL_VENV=.venv-dgl, PY=python3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
VENV="${DGL_VENV:-.venv-dgl}"
PY="${PY:-python3}"
BIN="$VENV/bin"
export TMPDIR="${TMPDIR:-$ROOT/.tmp}"
mkdir -p "$TMPDIR"

# Is the env complete? dgl (with its torch) imports, and gnnrec resolves to this checkout.
ready() {
    [ -x "$BIN/python" ] && "$BIN/python" - "$ROOT" >/dev/null 2>&1 <<'EOF'
import os, sys
import dgl  # noqa: F401  (fails with a torch it has no graphbolt library for)
import pyarrow  # noqa: F401  (fails when its numpy is too old)
import torch
import torch_geometric  # noqa: F401
import gnnrec
assert torch.__version__.startswith("2.2.1"), torch.__version__
root = os.path.realpath(sys.argv[1])
assert os.path.realpath(gnnrec.__file__).startswith(root + os.sep), gnnrec.__file__
EOF
}

if ready; then
    echo "dgl_env: $VENV ready (dgl importable), nothing to do"
    exit 0
fi

start=$(date +%s)
[ -x "$BIN/python" ] || "$PY" -m venv "$VENV"
"$BIN/pip" install -q -U pip

CONSTRAINTS="$TMPDIR/dgl-constraints.txt"
cat >"$CONSTRAINTS" <<'EOF'
torch==2.2.1
numpy<2
dgl==2.1.0
torchdata==0.7.1
# pyarrow 26 refuses numpy<2 at import (its metadata does not say so, so pip would pick it)
pyarrow<26
EOF

# torch first (pinned), then DGL and its undeclared deps, then the project under the same
# constraints so no requirement (torch>=2.2, torch-geometric, ...) can change torch/numpy.
"$BIN/pip" install -q -c "$CONSTRAINTS" torch==2.2.1 "numpy<2"
"$BIN/pip" install -q -c "$CONSTRAINTS" dgl==2.1.0 torchdata==0.7.1 packaging pandas
"$BIN/pip" install -q -c "$CONSTRAINTS" -e ".[dev,dgl]"

if ! ready; then
    echo "dgl_env: $VENV built but dgl/gnnrec do not import; details:" >&2
    "$BIN/python" -c "import torch, numpy, dgl, gnnrec; print(torch.__version__, numpy.__version__, dgl.__version__)" >&2 || true
    exit 1
fi
"$BIN/python" -c "import torch, numpy, dgl, torch_geometric as pyg; print('dgl_env: torch', torch.__version__, 'numpy', numpy.__version__, 'dgl', dgl.__version__, 'pyg', pyg.__version__)"
echo "dgl_env: built $VENV in $(( $(date +%s) - start )) s"
