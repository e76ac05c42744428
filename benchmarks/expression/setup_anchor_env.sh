#!/usr/bin/env bash
# Builds the isolated venv for the scvi-tools anchor of the expression benchmark:
#   benchmarks/.venv-scvi  (git-ignored), used by benchmarks/expression/scvi_runner.py
# Safe to re-run: an existing venv is reused and pip skips what is already satisfied.
#
#   bash benchmarks/expression/setup_anchor_env.sh
#
# torch is pinned in every pip call that could pull it in (the pinned version resolves to a
# local CPU wheel; an unpinned one would drag in several GB of CUDA packages).
set -euo pipefail

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
SCVI_VERSION="${SCVI_VERSION:-1.4.2}"
PYTHON="${PYTHON:-python3}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${repo_root}/benchmarks/.venv-scvi"

if [[ ! -x "${venv}/bin/python" ]]; then
    "${PYTHON}" -m venv "${venv}"
fi
pip=("${venv}/bin/python" -m pip)

"${pip[@]}" install "torch==${TORCH_VERSION}"
# pynndescent < 0.7 as in pmtoolkit's pyproject: 0.7 returns scipy sparse arrays, on which
# scanpy 1.11.5's neighbours (>= 4,096 cells) and scrublet fail with scipy 1.17
"${pip[@]}" install "torch==${TORCH_VERSION}" "scvi-tools==${SCVI_VERSION}" scanpy igraph leidenalg \
    "pynndescent<0.7"

if "${pip[@]}" list 2>/dev/null | grep -i nvidia; then
    echo "error: CUDA (nvidia-*) packages ended up in ${venv}; remove the venv and check torch's pin" >&2
    exit 1
fi

"${venv}/bin/python" - <<'PY'
from importlib.metadata import version
import torch
import scvi  # noqa: F401
print("anchor venv ready: scvi-tools", version("scvi-tools"), "| torch", torch.__version__,
      "| scanpy", version("scanpy"))
PY
