#!/usr/bin/env bash
# Builds the isolated venv for the chemprop v2 anchor of the molecular property benchmark:
#   benchmarks/.venv-chemprop  (git-ignored), used by benchmarks/molprop/chemprop_runner.py
# Safe to re-run: an existing venv is reused and pip skips what is already satisfied.
#
#   bash benchmarks/molprop/setup_anchor_env.sh
#
# torch is pinned in every pip call that could pull it in: the pinned version resolves to a
# local CPU wheel, while an unpinned torch would drag in several GB of CUDA packages.
set -euo pipefail

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
CHEMPROP_VERSION="${CHEMPROP_VERSION:-2.3.1}"
DEEPCHEM_VERSION="${DEEPCHEM_VERSION:-2.8.0}"
PYTHON="${PYTHON:-python3}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${repo_root}/benchmarks/.venv-chemprop"

if [[ ! -x "${venv}/bin/python" ]]; then
    "${PYTHON}" -m venv "${venv}"
fi
pip=("${venv}/bin/python" -m pip)

"${pip[@]}" install "torch==${TORCH_VERSION}"
"${pip[@]}" install "torch==${TORCH_VERSION}" "chemprop==${CHEMPROP_VERSION}" \
    "deepchem==${DEEPCHEM_VERSION}"

if "${pip[@]}" list 2>/dev/null | grep -i nvidia; then
    echo "error: CUDA (nvidia-*) packages ended up in ${venv}; remove the venv and check torch's pin" >&2
    exit 1
fi
"${pip[@]}" check

"${venv}/bin/python" - <<'EOF'
from importlib.metadata import version
import torch
print("anchor venv ready: chemprop", version("chemprop"), "| deepchem", version("deepchem"),
      "| torch", torch.__version__, "| rdkit", version("rdkit"))
EOF
