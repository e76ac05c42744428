#!/usr/bin/env bash
# Builds the isolated venv for the DeepPurpose anchor of the drug-target benchmark:
#   benchmarks/.venv-deeppurpose  (git-ignored), used by benchmarks/dti/deeppurpose_runner.py
# Safe to re-run: an existing venv is reused and pip skips what is already satisfied.
#
#   bash benchmarks/dti/setup_anchor_env.sh
#
# torch is pinned in every pip call that could pull it in (the pinned version resolves to a
# local CPU wheel; an unpinned one would drag in several GB of CUDA packages). DeepPurpose's
# own requirements list is not installable as-is (it pins old packages and pulls torch
# unpinned), so it is installed without dependencies plus the ones it imports.
set -euo pipefail

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
DEEPPURPOSE_VERSION="${DEEPPURPOSE_VERSION:-0.1.5}"
PYTHON="${PYTHON:-python3}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${repo_root}/benchmarks/.venv-deeppurpose"

if [[ ! -x "${venv}/bin/python" ]]; then
    "${PYTHON}" -m venv "${venv}"
fi
pip=("${venv}/bin/python" -m pip)

"${pip[@]}" install "torch==${TORCH_VERSION}"
"${pip[@]}" install "torch==${TORCH_VERSION}" rdkit descriptastorus six pandas-flavor \
    subword-nmt wget requests scikit-learn scipy pandas matplotlib tqdm prettytable lifelines \
    dgllife tensorboard
"${pip[@]}" install --no-deps "DeepPurpose==${DEEPPURPOSE_VERSION}"

if "${pip[@]}" list 2>/dev/null | grep -i nvidia; then
    echo "error: CUDA (nvidia-*) packages ended up in ${venv}; remove the venv and check torch's pin" >&2
    exit 1
fi

"${venv}/bin/python" - <<'PY'
from importlib.metadata import version
import torch
from DeepPurpose import DTI, utils  # noqa: F401  (imports everything a CNN-CNN run needs)
print("anchor venv ready: DeepPurpose", version("DeepPurpose"), "| torch", torch.__version__,
      "| rdkit", version("rdkit"))
PY
